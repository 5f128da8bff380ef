"""Snakemake entry for rule compare_methods."""

from refusal_directions.workflow.runlog import job_arguments, rule_log

with rule_log(snakemake.log[0]):
    from refusal_directions.report.method_comparison import compare_methods

    compare_methods(**job_arguments(snakemake))
