"""How the report writes a number: the Jinja filters of its templates, one place for every format.

Every filter takes a value read from a result file and writes "n/a" where that value is missing or not
finite, so no "nan" reaches the report."""

from __future__ import annotations

import math
import re
from itertools import pairwise


def _missing(value) -> bool:
    return value is None or not math.isfinite(value)


def num(value: float, digits: int = 2, sign: str = "") -> str:
    """Fixed-point: 0.12 (``sign="+"``: +0.12)."""
    return "n/a" if _missing(value) else f"{value:{sign}.{digits}f}"


def sig(value: float, digits: int = 6) -> str:
    """Significant digits: 0.0012, 1e-05."""
    return "n/a" if _missing(value) else f"{value:.{digits}g}"


def pct(value: float, sign: str = "") -> str:
    """A proportion as a whole percentage: 12%."""
    return "n/a" if _missing(value) else f"{value:{sign}.0%}"


def points(value: float, sign: str = "") -> str:
    """A difference of proportions in percentage points: -12 pp."""
    return "n/a" if _missing(value) else f"{100 * value:{sign}.0f} pp"


def nats(value: float, sign: str = "") -> str:
    """A cross-entropy or its change, to a thousandth of a nat: 0.603."""
    return num(value, 3, sign)


FORMATS = {"num": num, "pct": pct, "points": points, "nats": nats}


def signed(value: float, fmt: str = "num") -> str:
    """A difference with its sign: +0.12."""
    return FORMATS[fmt](value, sign="+")


def span(extent: tuple[float, float]) -> str:
    """The smallest and the largest value of a column: 0.12 to 1.50."""
    low, high = extent
    return f"{num(low)} to {num(high)}"


def with_ci(row: dict, prefix: str, fmt: str = "pct") -> str:
    """The columns ``prefix``, ``prefix_ci_low`` and ``prefix_ci_high`` of a result row: 12% [5%, 20%]."""
    show = FORMATS[fmt]
    return f"{show(row[prefix])} [{show(row[f'{prefix}_ci_low'])}, {show(row[f'{prefix}_ci_high'])}]"


def change(row: dict, prefix: str, fmt: str = "points") -> str:
    """A change and its interval from a result row, and whether the interval includes no change."""
    value, low, high = row[prefix], row[f"{prefix}_ci_low"], row[f"{prefix}_ci_high"]
    text = f"{signed(value, fmt)} [{signed(low, fmt)}, {signed(high, fmt)}]"
    if not _missing(low) and not _missing(high) and low <= 0 <= high:
        text += " (no change within the interval)"
    return text


def format_p(log10_p: float) -> str:
    """A p-value in scientific notation from its log10, exact where the double would underflow."""
    if _missing(log10_p):
        return "n/a"
    exponent = math.floor(log10_p)
    mantissa = 10 ** (log10_p - exponent)
    if mantissa >= 9.995:
        mantissa, exponent = 1.0, exponent + 1
    return f"{mantissa:.2f}e{exponent:+03d}"


def layer_list(layers: list[int]) -> str:
    """Compact runs: [1, 2, 3, 7] -> '1-3, 7'."""
    runs, start = [], None
    for previous, current in pairwise([None, *layers, None]):
        if start is None:
            start = current
        elif current != previous + 1:
            runs.append(f"{start}-{previous}" if previous != start else str(start))
            start = current
    return ", ".join(runs)


def yes_no(flag: bool) -> str:
    return "yes" if flag else "no"


def upper_first(text: str) -> str:
    """The first letter capitalised, the rest kept (Jinja's ``capitalize`` lowercases the rest)."""
    return text[:1].upper() + text[1:]


def millions(count: int) -> str:
    """A parameter count in millions or billions: 135M, 1.5B."""
    return f"{count / 1e9:.3g}B" if count >= 1e9 else f"{count / 1e6:.3g}M"


def cell(text: str, length: int = 80) -> str:
    """Free text in one Markdown table cell: on one line, no column bar, at most ``length`` characters."""
    flat = " ".join(str(text).split()).replace("|", "\\|")
    return flat if len(flat) <= length else flat[: length - 1] + "…"


FILTERS = {
    "num": num,
    "sig": sig,
    "pct": pct,
    "points": points,
    "signed": signed,
    "span": span,
    "with_ci": with_ci,
    "change": change,
    "format_p": format_p,
    "layer_list": layer_list,
    "yes_no": yes_no,
    "quoted": repr,
    "upper_first": upper_first,
    "millions": millions,
    "cell": cell,
}


def unwrap(text: str) -> str:
    """One line per paragraph, list item and table row: the templates wrap them over indented lines, which
    join the line before them (Markdown reads the wrapped text the same)."""
    text = re.sub(r"(?<=\S)[ \t]*\n[ \t]+(?=\S)", " ", text)
    return re.sub(r"^[ \t]+", "", text, flags=re.MULTILINE)


def shown(value):
    """The Environment's ``finalize``: a float or a missing value printed without a filter is a template
    error, so every number passes a format above and a missing one is handled where it occurs."""
    if value is None or isinstance(value, float) or type(value).__module__ == "numpy":
        raise TypeError(f"{value!r} printed without a format filter")
    return value
