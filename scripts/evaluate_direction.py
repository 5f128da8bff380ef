"""Snakemake entry for rule evaluate_direction."""

from refusal_directions.runlog import rule_log

with rule_log(snakemake.log[0]):
    from refusal_directions.evaluation import evaluate_direction
    from refusal_directions.model_job import job_context

    evaluate_direction(**job_context(snakemake), settings=snakemake.params.evaluation)
