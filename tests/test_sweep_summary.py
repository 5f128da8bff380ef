"""The intervention sweep table: refusal rates per layer and condition, and KL, from labelled responses."""

import pandas as pd
import pytest

from refusal_directions.sweep_summary import RATE_CONDITIONS, sweep_table


def labelled(layer, condition, prompt_set, refused):
    return [{"layer": layer, "condition": condition, "set": prompt_set, "refused": value} for value in refused]


def test_sweep_table_rates_and_kl():
    rows = labelled(None, "baseline", "harmful", [True, True, False, True]) + labelled(
        None, "baseline", "harmless", [False, False, False, True]
    )
    rates = {"ablation_all": 0.25, "ablation_layer": 0.5, "random_ablation_all": 0.75, "addition": 1.0,
             "random_addition": 0.0}  # fmt: skip
    for layer in (2, 5):
        for condition, rate in rates.items():
            prompt_set = "harmless" if "addition" in condition else "harmful"
            rows += labelled(layer, condition, prompt_set, [index < rate * 4 for index in range(4)])
    divergences = pd.DataFrame(
        [{"layer": layer, "condition": c, "mean_kl": layer / 10 + i} for layer in (2, 5) for i, c in enumerate("ab")]
    )
    table = sweep_table(pd.DataFrame(rows), divergences)
    assert table["layer"].tolist() == [2, 5]
    assert (table["n_harmful"] == 4).all() and (table["n_harmless"] == 4).all()
    assert table["refusal_baseline_harmful"].tolist() == [0.75, 0.75]
    assert table["refusal_baseline_harmless"].tolist() == [0.25, 0.25]
    for condition in RATE_CONDITIONS:
        assert table[f"refusal_{condition}"].tolist() == [rates[condition]] * 2
    assert table["kl_a"].tolist() == pytest.approx([0.2, 0.5]) and table["kl_b"].tolist() == pytest.approx([1.2, 1.5])
