"""Snakemake entry for rule sample_prompts."""

from refusal_directions.workflow.runlog import job_arguments, rule_log

with rule_log(snakemake.log[0]):
    from refusal_directions.data.sampling import sample_prompts

    sample_prompts(**job_arguments(snakemake))
