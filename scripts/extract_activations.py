"""Snakemake entry for checkpoint extract_activations."""

from refusal_directions.runlog import job_arguments, rule_log

with rule_log(snakemake.log[0]):
    from refusal_directions.extraction import extract_activations

    extract_activations(**job_arguments(snakemake))
