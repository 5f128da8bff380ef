"""Snakemake entry for rule compute_candidates."""

from refusal_directions.runlog import rule_log

with rule_log(snakemake.log[0]):
    from refusal_directions.directions import write_candidates

    write_candidates(snakemake.input.manifest, snakemake.input.splits, snakemake.output[0], snakemake.params.model_id)
