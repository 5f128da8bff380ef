"""Stage export (rules/export.smk, rules/capability.smk): the selected direction orthogonalized out of
the weights, the edited checkpoint checked against the hook ablation, and what each intervention costs in
cross-entropy.

May import: workflow, data, model, stats, judging, behaviour, interventions, selection."""
