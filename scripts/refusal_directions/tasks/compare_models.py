"""Write the cross-model table and figure."""

from __future__ import annotations

import pandas as pd

from ..comparison import comparison_table, depth_figure
from ..jsonio import read_json


def main(models: list[str], summaries: list[str], validations: list[str], table_csv: str, figure_png: str, dpi: int):
    comparison_table([read_json(path) for path in summaries]).to_csv(table_csv, index=False)
    tables = {model: pd.read_csv(path) for model, path in zip(models, validations, strict=True)}
    depth_figure(tables).savefig(figure_png, dpi=dpi)
