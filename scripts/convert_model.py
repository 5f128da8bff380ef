"""Snakemake entry for rule convert_model."""

from refusal_directions.runlog import rule_log

with rule_log(snakemake.log[0]):
    from refusal_directions.tasks.convert_model import main

    main(snakemake.params.model, snakemake.output[0])
