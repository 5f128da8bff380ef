"""Stage report (rules/report.smk): the per-model Markdown report, rendered from templates with the facts
read from the result tables, every number formatted in one place.

May import: workflow, data, model, stats, judging, behaviour, interventions, selection, export."""
