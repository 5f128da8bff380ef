"""Stage interventions (rules/interventions.smk, Experiment 2): the registry of conditions, a condition
applied to a model, the one runner and the one summary of any list of conditions, the per-layer sweep and its
figure.

May import: workflow, data, model, stats, judging, behaviour."""
