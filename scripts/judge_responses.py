"""Snakemake entry for rule judge_responses."""

from refusal_directions.workflow.runlog import job_arguments, rule_log

with rule_log(snakemake.log[0]):
    from refusal_directions.judging.llm_judge import judge_responses

    judge_responses(**job_arguments(snakemake))
