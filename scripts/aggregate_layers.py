"""Snakemake entry for rule aggregate_layers."""

from refusal_directions.workflow.runlog import job_arguments, rule_log

with rule_log(snakemake.log[0]):
    from refusal_directions.stats.tables import write_tables

    write_tables(**job_arguments(snakemake))
