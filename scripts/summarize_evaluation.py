"""Snakemake entry for rule summarize_evaluation."""

from refusal_directions.runlog import named_files, rule_log

with rule_log(snakemake.log[0]):
    from refusal_directions.evaluation_summary import summarize_evaluation

    summarize_evaluation(
        **named_files(snakemake), refusal=snakemake.params.refusal, intervals=snakemake.params.intervals
    )
