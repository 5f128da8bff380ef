"""Snakemake entry for rule plot_capability."""

from refusal_directions.workflow.runlog import job_arguments, rule_log

with rule_log(snakemake.log[0]):
    from refusal_directions.export.figures import write_capability_figure

    write_capability_figure(**job_arguments(snakemake))
