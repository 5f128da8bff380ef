"""Write report.md from the tables and the summary."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..jsonio import read_json
from ..report import render


def main(inputs: dict[str, str], output_md: str, datasets: dict, seed: int) -> None:
    """``inputs``: summary, validation, top10 and, when those branches ran, refusals, auroc, levels, sweep."""
    experiments = {
        name: pd.read_csv(inputs[name]) for name in ("refusals", "auroc", "levels", "sweep") if name in inputs
    }
    text = render(
        read_json(inputs["summary"]),
        pd.read_csv(inputs["validation"]),
        pd.read_csv(inputs["top10"]),
        datasets,
        seed,
        experiments,
    )
    Path(output_md).write_text(text)
