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
	$(BIN)/python -m pip install --quiet --no-deps megadetector==10.0.28  # its validator only (pyproject.toml)
	@touch $(STAMP)

demo: $(STAMP)  ## the main job, on the embedded default (no services)
	$(BIN)/taxopost demo

# The database tests run twice: on SQLite (the embedded default) and on PostgreSQL. The Celery
# tests (real workers; Redis at TAXOPOST_TEST_BROKER_URL, default redis://127.0.0.1:6379/5) run
# once, in the PostgreSQL pass.
POSTGRES_URL ?= postgres://postgres@127.0.0.1:5432/taxopost

test: $(STAMP)  ## the test suite, on SQLite then PostgreSQL
	$(BIN)/pytest -m "not celery"
	@$(BIN)/python tests/postgres_available.py; status=$$?; \
	if [ $$status -eq 3 ]; then echo "PostgreSQL not available: database tests ran on SQLite only, Celery tests not run"; \
	elif [ $$status -ne 0 ]; then exit $$status; \
	else DATABASE_URL=$(POSTGRES_URL) $(BIN)/pytest -m "database or celery"; fi

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

format: $(STAMP)
	$(BIN)/ruff check --fix src tests benchmarks
	$(BIN)/ruff format src tests benchmarks

bench: $(STAMP)  ## benchmarks: print medians and ratios against a baseline measured in the same run
	$(BIN)/python benchmarks/core_rollup.py
	$(BIN)/python benchmarks/formats.py
	$(BIN)/python benchmarks/startup.py

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
