"""Snakemake entry for rule plot_selection."""

from refusal_directions.runlog import rule_log

with rule_log(snakemake.log[0]):
    from refusal_directions.plotting import write_selection_figure

    params = snakemake.params
    write_selection_figure(
        snakemake.input.scores, snakemake.input.summary, snakemake.output[0], params.title, params.dpi
    )
