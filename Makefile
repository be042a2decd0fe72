# The commands README, CI and people share.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: all install runtime test lint types bench bench-more serve clean

all: lint types test

# What running jobd needs, and nothing else: `make serve` is quick on a fresh clone.
# Quiet on stdout, where `make serve` prints jobd's URL first; a line on stderr instead.
$(VENV)/.runtime: pyproject.toml
	@echo "make: installing jobd into $(VENV)" >&2
	@$(PYTHON) -m venv $(VENV)
	@$(BIN)/pip install --quiet --disable-pip-version-check -e .
	@touch $@

# The test tools on top (pytest, mypy, ruff, schemathesis, playwright...).
$(VENV)/.test: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $(VENV)/.runtime $@

runtime: $(VENV)/.runtime

install: $(VENV)/.test

test: install
	$(BIN)/pytest

# Every Python tree we ship or run; mypy's list is `files` in pyproject.toml (the same trees).
LINTED := provena_jobd EcsSqsPythonTools tests bench

lint: install
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)

types: install
	$(BIN)/mypy

# The bench extra adds huey, the peer the benchmark measures in the same run.
bench: install
	$(BIN)/pip install --quiet -e '.[test,bench]'
	$(BIN)/python -m bench.run $(BENCH_ARGS)

# The rows that take longer or need PostgreSQL, each its own command (docs/benchmarks.md):
# launch latency while retention prunes 1,000,000 jobs, PostgreSQL against SQLite and
# procrastinate, and the attempt-history triggers' cost as an A/B.
bench-more: install
	$(BIN)/pip install --quiet -e '.[test,bench]'
	$(BIN)/python -m bench.retention --seconds 20
	$(BIN)/python -m bench.postgres
	$(BIN)/python -m bench.history_ab 20000 5

# Not echoed: jobd's URL is the first line on stdout, for a harness to read.
serve: runtime
	@$(BIN)/jobd serve

clean:
	rm -rf $(VENV) *.egg-info .mypy_cache .ruff_cache .pytest_cache
