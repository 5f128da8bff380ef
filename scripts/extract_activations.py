"""Snakemake entry for checkpoint extract_activations."""

from refusal_directions.runlog import rule_log

with rule_log(snakemake.log[0]):
    from refusal_directions.execution import ExecutionSettings
    from refusal_directions.extraction import extract_activations

    datasets = snakemake.params.datasets
    extract_activations(
        spec=snakemake.params.model,
        prompt_files=dict(zip(datasets, snakemake.input.prompts, strict=True)),
        formatted_outputs=dict(zip(datasets, snakemake.output.prompts, strict=True)),
        activations_dir=snakemake.output.activations,
        converted_dir=snakemake.input.get("converted"),
        positions=snakemake.params.positions,
        refusal=snakemake.params.refusal_score,
        execution=ExecutionSettings.from_resources(snakemake.resources, snakemake.threads),
    )
