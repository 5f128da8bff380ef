"""Snakemake entry for rule layer_stats."""

from refusal_directions.runlog import rule_log

with rule_log(snakemake.log[0]):
    from refusal_directions.layer_analysis import StatsSettings, write_layer_statistics

    control = snakemake.params.control
    write_layer_statistics(
        snakemake.input.activations,
        snakemake.input.splits,
        snakemake.output.stats,
        snakemake.output.null,
        StatsSettings(**snakemake.params.statistics),
        (control["a"], control["b"]) if control else None,
    )
