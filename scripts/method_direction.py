"""Snakemake entry for rule method_direction."""

from refusal_directions.workflow.runlog import job_arguments, rule_log

with rule_log(snakemake.log[0]):
    from refusal_directions.stats.method_direction import write_selected_method_direction

    write_selected_method_direction(**job_arguments(snakemake))
