"""The kinds of text the capability cost is measured on (capability.py), one name each: the column ``text``
of capability.csv, and what the figure and the report call them."""

ON_DISTRIBUTION, GENERIC = "on_distribution", "generic"
TEXTS = (ON_DISTRIBUTION, GENERIC)
LABELS = {ON_DISTRIBUTION: "on-distribution text", GENERIC: "generic text"}
