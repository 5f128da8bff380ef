"""Snakemake entry for rule compare_models."""

from refusal_directions.workflow.runlog import job_arguments, rule_log

with rule_log(snakemake.log[0]):
    from refusal_directions.stats.comparison import write_comparison

    write_comparison(**job_arguments(snakemake))
