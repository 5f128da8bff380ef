"""refusal-directions: the logic behind the Snakemake workflow, importable and testable without Snakemake."""

import os

# Reproducible CPU numerics for every job (the entry scripts import this package before torch or numpy):
# Intel MKL's conditional numerical reproducibility, and no thread-count changes under load, so the same
# inputs give bit-identical activations from run to run.
os.environ.setdefault("MKL_CBWR", "AUTO,STRICT")
os.environ.setdefault("MKL_DYNAMIC", "FALSE")

__version__ = "0.1.0"
