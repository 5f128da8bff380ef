"""Snakemake entry for rule sample_prompts."""

from refusal_directions.runlog import rule_log

with rule_log(snakemake.log[0]):
    from refusal_directions.sampling import sample_prompts

    sample_prompts(
        snakemake.wildcards.dataset, snakemake.input[0], snakemake.output[0], snakemake.params.n_samples,
        snakemake.params.seed,
    )  # fmt: skip
