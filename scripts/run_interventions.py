"""Snakemake entry for rule run_interventions."""

from refusal_directions.runlog import rule_log

with rule_log(snakemake.log[0]):
    from refusal_directions.tasks.run_interventions import main

    main(
        spec=snakemake.params.model,
        prompt_files=dict(zip(("harmful", "harmless"), snakemake.input.prompts, strict=True)),
        directions=snakemake.input.directions,
        outputs=dict(snakemake.output.items()),
        converted_dir=snakemake.input.get("converted"),
        settings=snakemake.params.interventions,
        batch_size=snakemake.resources.batch_size,
        device=snakemake.resources.torch_device,
        device_map=None if snakemake.resources.device_map == "none" else snakemake.resources.device_map,
        threads=snakemake.threads,
    )
