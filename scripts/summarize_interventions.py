"""Snakemake entry for rule summarize_interventions."""

from refusal_directions.runlog import rule_log

with rule_log(snakemake.log[0]):
    from refusal_directions.sweep_summary import summarize_interventions

    summarize_interventions(
        inputs=dict(snakemake.input.items()),
        outputs=dict(snakemake.output.items()),
        refusal=snakemake.params.refusal,
        intervals=snakemake.params.intervals,
        title=snakemake.params.title,
        dpi=snakemake.params.dpi,
    )
