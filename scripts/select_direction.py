"""Snakemake entry for checkpoint select_direction."""

from refusal_directions.workflow.runlog import job_arguments, rule_log

with rule_log(snakemake.log[0]):
    from refusal_directions.selection.choice import select_direction

    select_direction(**job_arguments(snakemake))
