# The commands README, CI and people share.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: all install test lint types bench serve clean

all: lint types test

$(BIN)/jobd: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

install: $(BIN)/jobd

test: install
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check provena_jobd tests bench
	$(BIN)/ruff format --check provena_jobd tests bench

types: install
	$(BIN)/mypy

# The bench extra adds huey, the peer the benchmark measures in the same run.
bench: install
	$(BIN)/pip install --quiet -e '.[test,bench]'
	$(BIN)/python -m bench.run $(BENCH_ARGS)

serve: install
	$(BIN)/jobd serve

clean:
	rm -rf $(VENV) *.egg-info .mypy_cache .ruff_cache .pytest_cache
