"""Snakemake entry for rule aggregate_layers."""

from refusal_directions.runlog import rule_log

with rule_log(snakemake.log[0]):
    from refusal_directions.tasks.aggregate import main

    main(
        layer_stats=list(snakemake.input.stats),
        layer_directions=list(snakemake.input.directions),
        manifest_path=snakemake.input.manifest,
        outputs=dict(snakemake.output.items()),
        model=snakemake.params.model,
        statistics=snakemake.params.statistics,
        control=snakemake.params.control,
        config_hash=snakemake.params.config_hash,
    )
