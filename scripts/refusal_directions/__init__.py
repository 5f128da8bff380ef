"""refusal-directions: the logic behind the Snakemake workflow, importable and testable without Snakemake."""

__version__ = "0.1.0"
