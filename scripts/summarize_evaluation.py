"""Snakemake entry for rule summarize_evaluation."""

from refusal_directions.runlog import rule_log

with rule_log(snakemake.log[0]):
    from refusal_directions.evaluation_summary import summarize_evaluation

    summarize_evaluation(
        inputs=dict(snakemake.input.items()),
        outputs=dict(snakemake.output.items()),
        refusal=snakemake.params.refusal,
        intervals=snakemake.params.intervals,
    )
