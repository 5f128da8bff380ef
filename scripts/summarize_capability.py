"""Snakemake entry for rule summarize_capability."""

from refusal_directions.workflow.runlog import job_arguments, rule_log

with rule_log(snakemake.log[0]):
    from refusal_directions.export.capability_summary import summarize_capability

    summarize_capability(**job_arguments(snakemake))
