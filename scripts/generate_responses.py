"""Snakemake entry for rule generate_responses."""

from refusal_directions.runlog import rule_log

with rule_log(snakemake.log[0]):
    from refusal_directions.execution import ExecutionSettings
    from refusal_directions.generation import generate_responses

    generate_responses(
        spec=snakemake.params.model,
        prompt_files=dict(zip(("harmful", "harmless"), snakemake.input.prompts, strict=True)),
        splits=snakemake.input.splits,
        output=snakemake.output[0],
        converted_dir=snakemake.input.get("converted"),
        settings=snakemake.params.generation,
        execution=ExecutionSettings.from_resources(snakemake.resources, snakemake.threads),
    )
