"""Snakemake entry for rule split_prompts."""

from refusal_directions.runlog import job_arguments, rule_log

with rule_log(snakemake.log[0]):
    from refusal_directions.splits import write_splits

    write_splits(**job_arguments(snakemake))
