"""Snakemake entry for rule plot_directions."""

from refusal_directions.runlog import rule_log

with rule_log(snakemake.log[0]):
    from refusal_directions.tasks.plot_directions import main

    main(
        snakemake.input[0],
        snakemake.output[0],
        title=snakemake.params.title,
        d_min=snakemake.params.d_min,
        ci_level=snakemake.params.ci_level,
        dpi=snakemake.params.dpi,
    )
