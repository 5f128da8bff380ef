"""Snakemake entry for rule compute_directions."""

from refusal_directions.runlog import rule_log

with rule_log(snakemake.log[0]):
    from refusal_directions.directions import write_directions

    params = snakemake.params
    write_directions(
        snakemake.input.manifest, snakemake.input.splits, snakemake.output[0], params.model_id, params.control
    )
