"""Snakemake entry for rule summarize_interventions."""

from refusal_directions.workflow.runlog import job_arguments, rule_log

with rule_log(snakemake.log[0]):
    from refusal_directions.interventions.sweep_summary import summarize_interventions

    summarize_interventions(**job_arguments(snakemake))
