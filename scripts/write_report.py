"""Snakemake entry for rule write_report."""

from refusal_directions.workflow.runlog import job_arguments, rule_log

with rule_log(snakemake.log[0]):
    from refusal_directions.report.render import write_report

    write_report(**job_arguments(snakemake))
