"""The intervention sweep table and the interval helpers: rates with Wilson intervals, paired changes."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from refusal_directions.intervals import mean_interval, paired_difference, wilson_interval
from refusal_directions.sweep_summary import ABLATIONS, ADDITIONS, sweep_table


@pytest.mark.parametrize("successes, n", [(0, 12), (3, 12), (12, 12), (37, 100)])
def test_wilson_interval_against_scipy(successes, n):
    reference = scipy_stats.binomtest(successes, n).proportion_ci(0.95, method="wilson")
    assert wilson_interval(successes, n, 0.95) == pytest.approx((reference.low, reference.high), abs=1e-12)


def test_paired_difference_keeps_pairs_together():
    rng = np.random.default_rng(0)
    before = rng.normal(size=50)
    after = before + 0.3 + rng.normal(scale=0.01, size=50)  # the same shift on every prompt
    change, low, high = paired_difference(after, before, n_bootstrap=500, level=0.95, seed=0)
    assert change == pytest.approx(0.3, abs=0.01) and low <= change <= high and high - low < 0.02
    mean, low, high = mean_interval(before, n_bootstrap=500, level=0.95, seed=0)
    assert mean == pytest.approx(before.mean()) and low < mean < high


def labelled(layer, condition, prompt_set, refused):
    return [
        {"layer": layer, "condition": condition, "set": prompt_set, "row": row, "refused": value,
         "refusal_score": 1.0 if value else -1.0}
        for row, value in enumerate(refused)
    ]  # fmt: skip


def test_sweep_table_rates_changes_and_kl():
    rows = labelled(None, "baseline", "harmful", [True, True, False, True]) + labelled(
        None, "baseline", "harmless", [False, False, False, True]
    )
    rates = {"ablation_all": 0.25, "ablation_layer": 0.5, "random_ablation_all": 0.75, "control_ablation_all": 0.5,
             "addition": 1.0, "random_addition": 0.0, "control_addition": 0.25}  # fmt: skip
    for layer in (2, 5):
        for condition, rate in rates.items():
            prompt_set = "harmless" if condition in ADDITIONS else "harmful"
            rows += labelled(layer, condition, prompt_set, [index < rate * 4 for index in range(4)])
    divergences = pd.DataFrame(
        [{"layer": layer, "condition": c, "mean_kl": layer / 10 + i} for layer in (2, 5) for i, c in enumerate("ab")]
    )
    table = sweep_table(pd.DataFrame(rows), divergences, level=0.95, n_bootstrap=200, seed=0)
    assert table["layer"].tolist() == [2, 5]
    assert (table["n_harmful"] == 4).all() and (table["n_harmless"] == 4).all()
    assert table["refusal_baseline_harmful"].tolist() == [0.75, 0.75]
    assert table["refusal_baseline_harmless"].tolist() == [0.25, 0.25]
    for condition in ABLATIONS + ADDITIONS:
        assert table[f"refusal_{condition}"].tolist() == [rates[condition]] * 2
        low, high = wilson_interval(round(rates[condition] * 4), 4, 0.95)
        assert table[f"refusal_{condition}_ci_low"].tolist() == pytest.approx([low] * 2)
        assert table[f"refusal_{condition}_ci_high"].tolist() == pytest.approx([high] * 2)
        baseline = 0.25 if condition in ADDITIONS else 0.75
        assert table[f"change_{condition}"].tolist() == pytest.approx([rates[condition] - baseline] * 2)
    assert table["ablation_all_vs_random_ablation_all"].tolist() == pytest.approx([-0.5] * 2)
    assert table["addition_vs_control_addition"].tolist() == pytest.approx([0.75] * 2)
    assert table["kl_a"].tolist() == pytest.approx([0.2, 0.5]) and table["kl_b"].tolist() == pytest.approx([1.2, 1.5])
