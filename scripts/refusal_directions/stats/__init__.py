"""Stage stats (rules/stats.smk, rules/compare.smk): per-layer statistics of the difference-in-means
direction on the train split (t-tests, Cohen's d, held-out, permutation and bootstrap statistics, the control
contrast), the directions and candidates, intervals, the tables with every verdict, the layer figure and the
comparison across models.

May import: workflow, data, model."""
