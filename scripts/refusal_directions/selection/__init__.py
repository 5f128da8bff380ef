"""Stage selection (rules/selection.smk): the refusal direction as the field selects it: every candidate
scored on the validation split (in shared batches, optionally prefiltered by attribution), the choice, and the
chosen direction's evaluation on the test split.

May import: workflow, data, model, stats, judging, behaviour, interventions."""
