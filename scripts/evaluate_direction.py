"""Snakemake entry for rule evaluate_direction."""

from refusal_directions.workflow.runlog import job_arguments, rule_log

with rule_log(snakemake.log[0]):
    from refusal_directions.selection.evaluation import evaluate_direction

    evaluate_direction(**job_arguments(snakemake))
