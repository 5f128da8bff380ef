"""Snakemake entry for rule run_interventions."""

from refusal_directions.workflow.runlog import job_arguments, rule_log

with rule_log(snakemake.log[0]):
    from refusal_directions.interventions.sweep import run_intervention_sweep

    run_intervention_sweep(**job_arguments(snakemake))
