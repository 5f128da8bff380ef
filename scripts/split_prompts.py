"""Snakemake entry for rule split_prompts."""

from refusal_directions.workflow.runlog import job_arguments, rule_log

with rule_log(snakemake.log[0]):
    from refusal_directions.data.splits import write_splits

    write_splits(**job_arguments(snakemake))
