"""Snakemake entry for rule layer_stats."""

from refusal_directions.workflow.runlog import job_arguments, rule_log

with rule_log(snakemake.log[0]):
    from refusal_directions.stats.layer_analysis import write_layer_statistics

    write_layer_statistics(**job_arguments(snakemake))
