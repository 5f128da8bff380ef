"""Snakemake entry for rule download_dataset."""

from refusal_directions.runlog import rule_log

with rule_log(snakemake.log[0]):
    from refusal_directions.prompt_sources import download_dataset

    download_dataset(snakemake.wildcards.dataset, snakemake.params.spec, snakemake.output[0])
