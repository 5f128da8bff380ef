"""Snakemake entry for rule compute_method_candidates."""

from refusal_directions.workflow.runlog import job_arguments, rule_log

with rule_log(snakemake.log[0]):
    from refusal_directions.stats.directions import write_method_candidates

    write_method_candidates(**job_arguments(snakemake))
