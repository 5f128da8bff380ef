"""Snakemake entry for rule select_direction."""

from refusal_directions.runlog import named_files, rule_log

with rule_log(snakemake.log[0]):
    from refusal_directions.selection import select_direction

    select_direction(**named_files(snakemake), settings=snakemake.params.selection)
