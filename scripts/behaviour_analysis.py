"""Snakemake entry for rule behaviour_analysis."""

from refusal_directions.runlog import named_files, rule_log

with rule_log(snakemake.log[0]):
    from refusal_directions.behaviour import write_behaviour_analysis

    write_behaviour_analysis(
        **named_files(snakemake),
        statistics=snakemake.params.statistics,
        title=snakemake.params.title,
        dpi=snakemake.params.dpi,
    )
