"""Snakemake entry for rule evaluate_direction."""

from refusal_directions.runlog import rule_log

with rule_log(snakemake.log[0]):
    from refusal_directions.evaluation import evaluate_direction
    from refusal_directions.execution import ExecutionSettings

    evaluate_direction(
        spec=snakemake.params.model,
        inputs=dict(snakemake.input.items()),
        outputs=dict(snakemake.output.items()),
        settings=snakemake.params.evaluation,
        execution=ExecutionSettings.from_resources(snakemake.resources, snakemake.threads),
    )
