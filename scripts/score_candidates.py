"""Snakemake entry for rule score_candidates."""

from refusal_directions.workflow.runlog import job_arguments, rule_log

with rule_log(snakemake.log[0]):
    from refusal_directions.selection.candidate_scores import score_candidates

    score_candidates(**job_arguments(snakemake))
