"""The config as the workflow definition reads it before any job (rules/common.smk): schema checks with
one-line errors, the notes printed on the terminal, and the cluster resources of every model job.

May import: workflow, data, model, stats, judging, behaviour, interventions, selection, export,
report."""
