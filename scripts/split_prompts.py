"""Snakemake entry for rule split_prompts."""

from refusal_directions.runlog import rule_log

with rule_log(snakemake.log[0]):
    from refusal_directions.splits import write_splits

    splits = snakemake.params.splits
    write_splits(
        dict(zip(snakemake.params.datasets, snakemake.input, strict=True)),
        snakemake.output[0],
        weights=splits,
        seed=splits["seed"],
    )
