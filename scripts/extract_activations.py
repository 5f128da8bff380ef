"""Snakemake entry for checkpoint extract_activations."""

from refusal_directions.workflow.runlog import job_arguments, rule_log

with rule_log(snakemake.log[0]):
    from refusal_directions.model.extraction import extract_activations

    extract_activations(**job_arguments(snakemake))
