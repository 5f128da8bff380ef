"""Snakemake entry for rule orthogonalize_model."""

from refusal_directions.workflow.runlog import job_arguments, rule_log

with rule_log(snakemake.log[0]):
    from refusal_directions.export.orthogonalization import export_edited_model

    export_edited_model(**job_arguments(snakemake))
