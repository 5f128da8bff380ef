"""Snakemake entry for rule judge_agreement."""

from refusal_directions.workflow.runlog import job_arguments, rule_log

with rule_log(snakemake.log[0]):
    from refusal_directions.judging.agreement import write_judge_agreement

    write_judge_agreement(**job_arguments(snakemake))
