"""Snakemake entry for rule convert_model."""

from refusal_directions.runlog import job_arguments, rule_log

with rule_log(snakemake.log[0]):
    from refusal_directions.conversion import convert_gguf_model

    convert_gguf_model(**job_arguments(snakemake))
