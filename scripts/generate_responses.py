"""Snakemake entry for rule generate_responses."""

from refusal_directions.workflow.runlog import job_arguments, rule_log

with rule_log(snakemake.log[0]):
    from refusal_directions.behaviour.responses import generate_responses

    generate_responses(**job_arguments(snakemake))
