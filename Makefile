# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint types install bench fuzz clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/python -m app.run

lint: $(STAMP)
	$(BIN)/ruff check app tests alembic $(wildcard bench)
	$(BIN)/ruff format --check app tests alembic $(wildcard bench)

types: $(STAMP)
	$(BIN)/mypy app

test: lint types
	$(BIN)/python -m pytest -q

# Longer schemathesis run than the bounded one in `make test` (README: Longer fuzzing).
fuzz: $(STAMP)
	$(BIN)/python -m tests.fuzz $(FUZZ_ARGS)

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .storeops .mypy_cache .ruff_cache .pytest_cache
