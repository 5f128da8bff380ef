"""Snakemake entry for rule check_edited_model."""

from refusal_directions.workflow.runlog import job_arguments, rule_log

with rule_log(snakemake.log[0]):
    from refusal_directions.export.edited_check import check_edited_model

    check_edited_model(**job_arguments(snakemake))
