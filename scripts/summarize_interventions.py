"""Snakemake entry for rule summarize_interventions."""

from refusal_directions.runlog import named_files, rule_log

with rule_log(snakemake.log[0]):
    from refusal_directions.sweep_summary import summarize_interventions

    summarize_interventions(
        **named_files(snakemake),
        refusal=snakemake.params.refusal,
        intervals=snakemake.params.intervals,
        title=snakemake.params.title,
        dpi=snakemake.params.dpi,
    )
