"""Snakemake entry for rule score_candidates."""

from refusal_directions.runlog import rule_log

with rule_log(snakemake.log[0]):
    from refusal_directions.candidate_scores import score_candidates
    from refusal_directions.execution import ExecutionSettings

    score_candidates(
        spec=snakemake.params.model,
        inputs=dict(snakemake.input.items()),
        outputs=dict(snakemake.output.items()),
        settings=snakemake.params.scoring,
        execution=ExecutionSettings.from_resources(snakemake.resources, snakemake.threads),
    )
