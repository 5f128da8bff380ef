"""Snakemake entry for checkpoint extract_activations."""

from refusal_directions.runlog import rule_log

with rule_log(snakemake.log[0]):
    from refusal_directions.tasks.extract import main

    datasets = snakemake.params.datasets
    main(
        spec=snakemake.params.model,
        prompt_files=dict(zip(datasets, snakemake.input.prompts, strict=True)),
        formatted_outputs=dict(zip(datasets, snakemake.output.prompts, strict=True)),
        activations_dir=snakemake.output.activations,
        converted_dir=snakemake.input.get("converted"),
        batch_size=snakemake.resources.batch_size,
        device=snakemake.resources.torch_device,
        device_map=None if snakemake.resources.device_map == "none" else snakemake.resources.device_map,
        threads=snakemake.threads,
    )
