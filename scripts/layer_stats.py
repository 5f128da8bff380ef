"""Snakemake entry for rule layer_stats."""

from refusal_directions.runlog import rule_log

with rule_log(snakemake.log[0]):
    from refusal_directions.tasks.layer_stats import main

    main(
        snakemake.input[0],
        snakemake.output.stats,
        snakemake.output.direction,
        alpha=snakemake.params.alpha,
        d_min=snakemake.params.d_min,
    )
