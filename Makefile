# Two commands matter on a fresh machine with Python 3.11: `make demo` and `make test`.
# Both create (or reuse) the virtualenv in .venv themselves.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed

.PHONY: demo test lint format bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)  ## the main job, on the embedded default (no services)
	$(BIN)/taxopost demo

test: $(STAMP)  ## the test suite
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

format: $(STAMP)
	$(BIN)/ruff check --fix src tests benchmarks
	$(BIN)/ruff format src tests benchmarks

bench: $(STAMP)  ## benchmarks: print medians and ratios against a baseline measured in the same run
	$(BIN)/python benchmarks/core_rollup.py

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
