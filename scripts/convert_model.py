"""Snakemake entry for rule convert_model."""

from refusal_directions.workflow.runlog import job_arguments, rule_log

with rule_log(snakemake.log[0]):
    from refusal_directions.model.conversion import convert_gguf_model

    convert_gguf_model(**job_arguments(snakemake))
