"""Snakemake entry for rule run_interventions."""

from refusal_directions.runlog import rule_log

with rule_log(snakemake.log[0]):
    from refusal_directions.execution import ExecutionSettings
    from refusal_directions.intervention_sweep import run_intervention_sweep

    run_intervention_sweep(
        spec=snakemake.params.model,
        inputs=dict(snakemake.input.items()),
        outputs=dict(snakemake.output.items()),
        settings=snakemake.params.interventions,
        execution=ExecutionSettings.from_resources(snakemake.resources, snakemake.threads),
    )
