"""Snakemake entry for rule generate_responses."""

from refusal_directions.runlog import rule_log

with rule_log(snakemake.log[0]):
    from refusal_directions.generation import generate_responses
    from refusal_directions.model_job import job_context

    generate_responses(**job_context(snakemake), settings=snakemake.params.generation)
