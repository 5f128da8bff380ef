"""Snakemake entry for rule compute_directions."""

from refusal_directions.workflow.runlog import job_arguments, rule_log

with rule_log(snakemake.log[0]):
    from refusal_directions.stats.directions import write_directions

    write_directions(**job_arguments(snakemake))
