"""Snakemake entry for rule optimize_direction."""

from refusal_directions.workflow.runlog import job_arguments, rule_log

with rule_log(snakemake.log[0]):
    from refusal_directions.selection.direction_optimization import optimize_direction

    optimize_direction(**job_arguments(snakemake))
