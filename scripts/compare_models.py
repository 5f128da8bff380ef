"""Snakemake entry for rule compare_models."""

from refusal_directions.runlog import rule_log

with rule_log(snakemake.log[0]):
    from refusal_directions.comparison import write_comparison

    write_comparison(
        models=snakemake.params.models,
        summaries=list(snakemake.input.summaries),
        validations=list(snakemake.input.validations),
        selected=list(snakemake.input.selected),
        table_csv=snakemake.output.table,
        figure_png=snakemake.output.figure,
        dpi=snakemake.params.dpi,
    )
