"""Snakemake entry for rule layer_stats."""

from refusal_directions.runlog import rule_log

with rule_log(snakemake.log[0]):
    from refusal_directions.layer_analysis import StatsSettings
    from refusal_directions.tasks.layer_stats import main

    control = snakemake.params.control
    main(
        snakemake.input[0],
        snakemake.output.stats,
        snakemake.output.direction,
        settings=StatsSettings(**snakemake.params.statistics),
        control=(control["a"], control["b"]) if control else None,
    )
