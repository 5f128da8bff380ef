"""Stage behaviour (rules/behaviour.smk, Experiment 1): the model's responses to test-split prompts and
whether the projection on a layer's direction predicts refusal.

May import: workflow, data, model, stats, judging."""
