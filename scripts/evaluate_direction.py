"""Snakemake entry for rule evaluate_direction."""

from refusal_directions.runlog import rule_log

with rule_log(snakemake.log[0]):
    from refusal_directions.evaluation import evaluate_direction
    from refusal_directions.execution import ExecutionSettings

    evaluate_direction(
        spec=snakemake.params.model,
        prompt_files=dict(zip(("harmful", "harmless"), snakemake.input.prompts, strict=True)),
        splits=snakemake.input.splits,
        selected=snakemake.input.selected,
        directions=snakemake.input.directions,
        manifest=snakemake.input.manifest,
        outputs=dict(snakemake.output.items()),
        converted_dir=snakemake.input.get("converted"),
        settings=snakemake.params.evaluation,
        execution=ExecutionSettings.from_resources(snakemake.resources, snakemake.threads),
    )
