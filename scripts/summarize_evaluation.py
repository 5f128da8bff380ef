"""Snakemake entry for rule summarize_evaluation."""

from refusal_directions.workflow.runlog import job_arguments, rule_log

with rule_log(snakemake.log[0]):
    from refusal_directions.selection.evaluation_summary import summarize_evaluation

    summarize_evaluation(**job_arguments(snakemake))
