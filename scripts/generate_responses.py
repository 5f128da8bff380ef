"""Snakemake entry for rule generate_responses."""

from refusal_directions.runlog import rule_log

with rule_log(snakemake.log[0]):
    from refusal_directions.tasks.generate_responses import main

    main(
        spec=snakemake.params.model,
        prompt_files=dict(zip(("harmful", "harmless"), snakemake.input.prompts, strict=True)),
        output=snakemake.output[0],
        converted_dir=snakemake.input.get("converted"),
        settings=snakemake.params.generation,
        batch_size=snakemake.resources.batch_size,
        device=snakemake.resources.torch_device,
        device_map=None if snakemake.resources.device_map == "none" else snakemake.resources.device_map,
        threads=snakemake.threads,
    )
