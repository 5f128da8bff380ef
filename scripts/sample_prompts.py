"""Snakemake entry for rule sample_prompts."""

from refusal_directions.runlog import job_arguments, rule_log

with rule_log(snakemake.log[0]):
    from refusal_directions.sampling import sample_prompts

    sample_prompts(**job_arguments(snakemake))
