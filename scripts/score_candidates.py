"""Snakemake entry for rule score_candidates."""

from refusal_directions.runlog import rule_log

with rule_log(snakemake.log[0]):
    from refusal_directions.candidate_scores import score_candidates
    from refusal_directions.model_job import job_context

    score_candidates(**job_context(snakemake), settings=snakemake.params.scoring)
