"""Snakemake entry for rule run_interventions."""

from refusal_directions.runlog import rule_log

with rule_log(snakemake.log[0]):
    from refusal_directions.intervention_sweep import run_intervention_sweep
    from refusal_directions.model_job import job_context

    run_intervention_sweep(**job_context(snakemake), settings=snakemake.params.interventions)
