"""Draw direction_analysis.png from validation_results.csv."""

from __future__ import annotations

import pandas as pd

from ..plotting import direction_analysis_figure


def main(validation_csv: str, output_png: str, title: str, d_min: float, ci_level: float, dpi: int) -> None:
    figure = direction_analysis_figure(pd.read_csv(validation_csv), title, d_min, ci_level)
    figure.savefig(output_png, dpi=dpi)
