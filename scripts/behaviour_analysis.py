"""Snakemake entry for rule behaviour_analysis."""

from refusal_directions.runlog import rule_log

with rule_log(snakemake.log[0]):
    from refusal_directions.behaviour import write_behaviour_analysis

    write_behaviour_analysis(
        refusals_csv=snakemake.input.refusals,
        directions=snakemake.input.directions,
        manifest=snakemake.input.manifest,
        splits=snakemake.input.splits,
        prompt_files=dict(zip(("harmful", "harmless"), snakemake.input.prompts, strict=True)),
        outputs=dict(snakemake.output.items()),
        statistics=snakemake.params.statistics,
        title=snakemake.params.title,
        dpi=snakemake.params.dpi,
    )
