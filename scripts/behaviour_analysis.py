"""Snakemake entry for rule behaviour_analysis."""

from refusal_directions.workflow.runlog import job_arguments, rule_log

with rule_log(snakemake.log[0]):
    from refusal_directions.behaviour.analysis import write_behaviour_analysis

    write_behaviour_analysis(**job_arguments(snakemake))
