"""Snakemake entry for rule aggregate_layers."""

from refusal_directions.runlog import rule_log

with rule_log(snakemake.log[0]):
    from refusal_directions.tables import write_tables

    write_tables(
        layer_stats=list(snakemake.input.stats),
        manifest_path=snakemake.input.manifest,
        directions_path=snakemake.input.directions,
        outputs=dict(snakemake.output.items()),
        model=snakemake.params.model,
        statistics=snakemake.params.statistics,
        thresholds=snakemake.params.thresholds,
        splits=snakemake.params.splits,
        control=snakemake.params.control,
        config_hash=snakemake.params.config_hash,
    )
