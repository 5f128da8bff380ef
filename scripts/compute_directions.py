"""Snakemake entry for rule compute_directions."""

from refusal_directions.runlog import rule_log

with rule_log(snakemake.log[0]):
    from refusal_directions.directions import write_directions

    write_directions(snakemake.input.manifest, snakemake.output[0], snakemake.params.model_id, snakemake.params.control)
