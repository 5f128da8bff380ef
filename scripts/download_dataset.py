"""Snakemake entry for rules download_dataset and download_capability_texts."""

from refusal_directions.workflow.runlog import job_arguments, rule_log

with rule_log(snakemake.log[0]):
    from refusal_directions.data.sources import download_dataset

    download_dataset(**job_arguments(snakemake))
