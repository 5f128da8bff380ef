"""Snakemake entry for rule write_report."""

from refusal_directions.runlog import rule_log

with rule_log(snakemake.log[0]):
    from refusal_directions.tasks.write_report import main

    main(
        dict(snakemake.input.items()),
        snakemake.output[0],
        datasets=snakemake.params.datasets,
        seed=snakemake.params.seed,
    )
