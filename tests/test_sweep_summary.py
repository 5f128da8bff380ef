"""The intervention sweep table and the interval helpers: rates with Wilson intervals, paired changes."""

import math
from statistics import NormalDist

import numpy as np
import pandas as pd
import pytest

from refusal_directions.interventions.conditions import CONDITIONS, SWEEP
from refusal_directions.interventions.sweep_summary import sweep_table
from refusal_directions.stats.intervals import mean_interval, paired_difference, wilson_interval


@pytest.mark.parametrize(
    "successes, n, level", [(0, 12, 0.95), (3, 12, 0.95), (12, 12, 0.95), (37, 100, 0.9), (0, 1, 0.5), (1, 1, 0.99)]
)
def test_wilson_interval_solves_the_score_equation(successes, n, level):
    """Wilson's ends are the p where the score test is just significant: n (k/n - p)^2 = z^2 p (1 - p), i.e.
    (n + z^2) p^2 - (2k + z^2) p + k^2/n = 0, solved here numerically."""
    z = NormalDist().inv_cdf(0.5 + level / 2)
    roots = sorted(np.roots([n + z * z, -(2 * successes + z * z), successes * successes / n]).real)
    assert wilson_interval(successes, n, level) == pytest.approx((roots[0], roots[-1]), abs=1e-12)


def test_wilson_interval_of_no_prompts():
    assert all(math.isnan(end) for end in wilson_interval(0, 0, 0.95))


def test_paired_difference_keeps_pairs_together():
    rng = np.random.default_rng(0)
    before = rng.normal(size=50)
    after = before + 0.3 + rng.normal(scale=0.01, size=50)  # the same shift on every prompt
    change, low, high = paired_difference(after, before, n_bootstrap=500, level=0.95, seed=0)
    assert change == pytest.approx(0.3, abs=0.01) and low <= change <= high and high - low < 0.02
    mean, low, high = mean_interval(before, n_bootstrap=500, level=0.95, seed=0)
    assert mean == pytest.approx(before.mean()) and low < mean < high


def labelled(layer, condition, refused):
    return [
        {"layer": layer, "condition": condition, "set": CONDITIONS[condition].prompt_set, "row": row,
         "refused": value, "refused_text": value, "refused_score": value, "refusal_score": 1.0 if value else -1.0}
        for row, value in enumerate(refused)
    ]  # fmt: skip


def test_sweep_table_rates_changes_and_kl():
    rows = labelled(None, "baseline_harmful", [True, True, False, True]) + labelled(
        None, "baseline_harmless", [False, False, False, True]
    )
    rates = {"ablation_all": 0.25, "ablation_layer": 0.5, "random_ablation_all": 0.75, "control_ablation_all": 0.5,
             "addition": 1.0, "random_addition": 0.0, "control_addition": 0.25}  # fmt: skip
    assert set(rates) == set(SWEEP[2:])
    for layer in (2, 5):
        for condition, rate in rates.items():
            rows += labelled(layer, condition, [index < rate * 4 for index in range(4)])
    divergences = pd.DataFrame(
        [{"layer": layer, "condition": c, "mean_kl": layer / 10 + i}
         for layer in (2, 5) for i, c in enumerate(("ablation_all", "addition"))]
    )  # fmt: skip
    table = sweep_table(pd.DataFrame(rows), divergences, level=0.95, n_bootstrap=200, seed=0)
    assert table["layer"].tolist() == [2, 5]
    assert (table["n_harmful"] == 4).all() and (table["n_harmless"] == 4).all()
    assert table["refusal_baseline_harmful"].tolist() == [0.75, 0.75]
    assert table["refusal_baseline_harmless"].tolist() == [0.25, 0.25]
    for condition in rates:
        assert table[f"refusal_{condition}"].tolist() == [rates[condition]] * 2
        low, high = wilson_interval(round(rates[condition] * 4), 4, 0.95)
        assert table[f"refusal_{condition}_ci_low"].tolist() == pytest.approx([low] * 2)
        assert table[f"refusal_{condition}_ci_high"].tolist() == pytest.approx([high] * 2)
        baseline = 0.25 if CONDITIONS[condition].prompt_set == "harmless" else 0.75
        assert table[f"change_{condition}"].tolist() == pytest.approx([rates[condition] - baseline] * 2)
    assert table["ablation_all_vs_random_ablation_all"].tolist() == pytest.approx([-0.5] * 2)
    assert table["addition_vs_control_addition"].tolist() == pytest.approx([0.75] * 2)
    assert table["kl_ablation_all"].tolist() == pytest.approx([0.2, 0.5])
    assert table["kl_addition"].tolist() == pytest.approx([1.2, 1.5])
