"""Snakemake entry for rule measure_edited_capability."""

from refusal_directions.workflow.runlog import job_arguments, rule_log

with rule_log(snakemake.log[0]):
    from refusal_directions.export.capability import measure_edited_capability

    measure_edited_capability(**job_arguments(snakemake))
