"""Snakemake entry for rule score_candidates."""

from refusal_directions.runlog import rule_log

with rule_log(snakemake.log[0]):
    from refusal_directions.candidate_scores import score_candidates
    from refusal_directions.execution import ExecutionSettings

    score_candidates(
        spec=snakemake.params.model,
        prompt_files=dict(zip(("harmful", "harmless"), snakemake.input.prompts, strict=True)),
        splits=snakemake.input.splits,
        candidates_path=snakemake.input.candidates,
        manifest=snakemake.input.manifest,
        output=snakemake.output[0],
        converted_dir=snakemake.input.get("converted"),
        settings=snakemake.params.scoring,
        execution=ExecutionSettings.from_resources(snakemake.resources, snakemake.threads),
    )
