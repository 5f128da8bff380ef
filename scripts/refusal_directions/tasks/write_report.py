"""Write report.md from the tables and the summary."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..jsonio import read_json
from ..report import render


def main(summary_path: str, validation_csv: str, top10_csv: str, output_md: str, datasets: dict, seed: int) -> None:
    text = render(read_json(summary_path), pd.read_csv(validation_csv), pd.read_csv(top10_csv), datasets, seed)
    Path(output_md).write_text(text)
