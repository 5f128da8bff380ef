"""The validity rule on pure noise and on a planted direction; Holm's correction; the permutation floor."""

import numpy as np
import pytest

from refusal_directions.config.notes import split_note
from refusal_directions.stats.holm_floor import holm_floor_warning, permutation_floor
from refusal_directions.stats.layer_analysis import StatsSettings, analyse_layer
from refusal_directions.stats.tables import holm_log10, validation_table

SETTINGS = StatsSettings(n_folds=5, n_permutations=999, n_bootstrap=200, ci_level=0.95, seed=0)
ALPHA, D_MIN = 0.01, 0.5


def analyse_layers(make_groups, n_layers):
    rows = []
    for layer in range(n_layers):
        row, *_ = analyse_layer(make_groups(layer), SETTINGS, control=None)
        rows.append({"layer": layer, **row})
    return validation_table(rows, ALPHA, D_MIN)


def test_pure_noise_is_not_valid_though_the_seed_rule_says_it_is():
    def noise(layer):
        rng = np.random.default_rng(layer)
        return {"harmful": rng.normal(size=(40, 64)), "harmless": rng.normal(size=(40, 64))}

    table = analyse_layers(noise, 100)
    assert table["valid"].mean() <= 0.01
    assert table["valid_seed_rule"].mean() > 0.5  # in-sample d of a fitted direction is inflated
    assert table["cohens_d"].mean() > 1.0 > abs(table["cohens_d_heldout"].mean())


def test_planted_direction_is_valid():
    def planted(layer):
        rng = np.random.default_rng(100 + layer)
        direction = rng.normal(size=64)
        direction /= np.linalg.norm(direction)
        return {"harmful": rng.normal(size=(40, 64)) + 2.5 * direction, "harmless": rng.normal(size=(40, 64))}

    table = analyse_layers(planted, 5)
    assert table["valid"].all()
    assert (table["cohens_d_heldout"] > 0.5).all()
    assert (table["p_holm"] <= 5 / 1000 + 1e-12).all()


def naive_holm(p):
    order = np.argsort(p)
    adjusted, running = np.empty(len(p)), 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (len(p) - rank) * p[index]))
        adjusted[index] = running
    return adjusted


def test_holm_matches_a_plain_implementation_and_survives_underflow():
    p = np.random.default_rng(0).uniform(size=30) ** 3
    np.testing.assert_allclose(10 ** holm_log10(np.log10(p)), naive_holm(p), rtol=1e-12)
    tiny = np.array([-400.0, -350.0, np.nan, -2.0])
    adjusted = holm_log10(tiny)
    assert adjusted[0] == pytest.approx(-400 + np.log10(3))
    assert adjusted[1] == pytest.approx(-350 + np.log10(2))
    assert np.isnan(adjusted[2]) and adjusted[3] == pytest.approx(-2.0)


def test_permutation_floor():
    assert permutation_floor(30, 1000) == pytest.approx(30 / 1001)
    assert permutation_floor(30, 10000) < 0.01 < permutation_floor(30, 1000)
    assert holm_floor_warning(30, 10000, 0.01) is None
    assert "smallest Holm-adjusted p is 0.03 >= alpha = 0.01" in holm_floor_warning(30, 999, 0.01)


def test_splits_that_do_not_add_up_are_proportions_and_the_note_gives_the_sizes():
    assert split_note(260, {"train": 128, "validation": 32, "test": 100}) is None
    assert split_note(24, {"train": 20, "validation": 4, "test": 8}) == (
        "splits: 24 prompts per set are split 15 / 3 / 6 (train / validation / test, in the proportions 20 : 4 : 8)"
    )


def test_thresholds_decide_validity_at_the_table_only():
    """The same per-layer numbers give different verdicts under other thresholds: no layer job reruns."""

    def planted(layer):
        rng = np.random.default_rng(200 + layer)
        direction = rng.normal(size=32)
        direction /= np.linalg.norm(direction)
        return {"harmful": rng.normal(size=(30, 32)) + (0.6 + layer) * direction, "harmless": rng.normal(size=(30, 32))}

    rows = [{"layer": layer, **analyse_layer(planted(layer), SETTINGS, control=None)[0]} for layer in range(3)]
    lenient, strict = validation_table(rows, 0.05, 0.2), validation_table(rows, 0.01, 2.5)
    assert lenient["valid"].sum() > strict["valid"].sum()
    expected_seed = (lenient["log10_p"] < np.log10(0.05)) & (lenient["cohens_d"].abs() > 0.2)
    assert (lenient["valid_seed_rule"] == expected_seed).all()
    undefined = validation_table([{**rows[0], "cohens_d": np.nan, "log10_p": np.nan}], 0.05, 0.2)
    assert not undefined["valid_seed_rule"].iloc[0] and not undefined["valid"].iloc[0]
