"""Snakemake entry for rule plot_directions."""

from refusal_directions.workflow.runlog import job_arguments, rule_log

with rule_log(snakemake.log[0]):
    from refusal_directions.stats.figures import write_direction_figure

    write_direction_figure(**job_arguments(snakemake))
