"""Snakemake entry for rule score_refusals."""

from refusal_directions.workflow.runlog import job_arguments, rule_log

with rule_log(snakemake.log[0]):
    from refusal_directions.judging.refusal import write_refusal_labels

    write_refusal_labels(**job_arguments(snakemake))
