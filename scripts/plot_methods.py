"""Snakemake entry for rule plot_methods."""

from refusal_directions.workflow.runlog import job_arguments, rule_log

with rule_log(snakemake.log[0]):
    from refusal_directions.report.method_figures import plot_methods

    plot_methods(**job_arguments(snakemake))
