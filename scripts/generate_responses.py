"""Snakemake entry for rule generate_responses."""

from refusal_directions.runlog import rule_log

with rule_log(snakemake.log[0]):
    from refusal_directions.execution import ExecutionSettings
    from refusal_directions.generation import generate_responses

    generate_responses(
        spec=snakemake.params.model,
        inputs=dict(snakemake.input.items()),
        outputs=dict(snakemake.output.items()),
        settings=snakemake.params.generation,
        execution=ExecutionSettings.from_resources(snakemake.resources, snakemake.threads),
    )
