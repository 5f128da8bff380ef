"""Snakemake entry for rule plot_selection."""

from refusal_directions.workflow.runlog import job_arguments, rule_log

with rule_log(snakemake.log[0]):
    from refusal_directions.selection.figures import write_selection_figure

    write_selection_figure(**job_arguments(snakemake))
