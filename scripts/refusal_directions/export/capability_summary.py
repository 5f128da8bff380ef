"""capability.csv: per kind of text and condition, the mean cross-entropy per scored token (all documents'
losses over all their tokens) with a bootstrap interval over documents, and its change against no
intervention with a paired interval (the same resampled documents under both conditions)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..interventions.conditions import CAPABILITY, label
from ..stats.intervals import interval_columns
from ..stats.resampling import percentile_interval
from ..workflow.errors import UserError
from .capability_texts import TEXTS

BOOTSTRAP_STREAM = 7
NO_INTERVENTION = CAPABILITY[0]


def per_token(losses: np.ndarray, tokens: np.ndarray, draws: np.ndarray) -> tuple[float, np.ndarray]:
    """Summed loss over summed tokens: of all documents, and of each bootstrap draw (rows of ``draws``)."""
    return losses.sum() / tokens.sum(), losses[draws].sum(axis=1) / tokens[draws].sum(axis=1)


def text_rows(text: str, part: pd.DataFrame, level: float, n_bootstrap: int, seed: int) -> list[dict]:
    """The rows of one kind of text: every condition on the documents that no intervention scored."""
    documents = part.loc[part["condition"] == NO_INTERVENTION, "document"].to_numpy()
    rng = np.random.default_rng([seed, BOOTSTRAP_STREAM, TEXTS.index(text)])
    draws = rng.integers(0, len(documents), (n_bootstrap, len(documents)))
    measured = {name: rows.set_index("document") for name, rows in part.groupby("condition")}
    base, base_draws = None, None
    rows = []
    for name in (n for n in CAPABILITY if n in measured):
        if set(measured[name].index) != set(documents):
            raise UserError(f"capability losses: condition {name} scored other {text} documents than {NO_INTERVENTION}")
        scored = measured[name].loc[documents]
        tokens = scored["n_tokens"].to_numpy(dtype=float)
        value, values = per_token(scored["loss_sum"].to_numpy(dtype=float), tokens, draws)
        if base is None:
            base, base_draws = value, values
        rows.append({
            "condition": name, "label": label(name), "text": text, "n_documents": len(documents),
            "n_tokens": int(tokens.sum()),
            **interval_columns("cross_entropy", (value, *percentile_interval(values, level))),
            **interval_columns("change", (value - base, *percentile_interval(values - base_draws, level))),
        })  # fmt: skip
    return rows


def capability_table(losses: pd.DataFrame, level: float, n_bootstrap: int, seed: int) -> pd.DataFrame:
    """One row per kind of text and condition, in TEXTS' and CAPABILITY's order (the first: no intervention)."""
    rows = []
    for text in (t for t in TEXTS if t in set(losses["text"])):
        rows += text_rows(text, losses[losses["text"] == text], level, n_bootstrap, seed)
    return pd.DataFrame(rows)


def summarize_capability(inputs: dict, outputs: dict, intervals: dict) -> None:
    """capability.csv from every losses file (the hook conditions', and the edited model's where it exists)."""
    losses = pd.concat([pd.read_csv(path) for path in inputs["losses"]], ignore_index=True)
    table = capability_table(losses, intervals["ci_level"], intervals["n_bootstrap"], intervals["seed"])
    table.to_csv(outputs["table"], index=False)
