"""Snakemake entry for rule write_report."""

from refusal_directions.runlog import rule_log

with rule_log(snakemake.log[0]):
    from refusal_directions.report import write_report

    params = snakemake.params
    write_report(dict(snakemake.input.items()), snakemake.output[0], params.datasets, params.seed, params.title)
