"""Snakemake entry for rule plot_directions."""

from refusal_directions.runlog import rule_log

with rule_log(snakemake.log[0]):
    from refusal_directions.plotting import write_direction_figure

    params = snakemake.params
    write_direction_figure(
        snakemake.input[0], snakemake.output[0], params.title, params.d_min, params.ci_level, params.dpi
    )
