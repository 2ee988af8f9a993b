# batchgen: `make demo` runs the whole pipeline on the simulated API; `make test` checks everything.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck unit bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	rm -rf demo-output && mkdir -p demo-output
	$(BIN)/batchgen run manifests/example.yaml --mock --out demo-output/example.results.csv --rpm 600

test: lint typecheck unit

lint: $(STAMP)
	$(BIN)/ruff check batchgen tests benchmarks
	$(BIN)/ruff format --check batchgen tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest -q

clean:
	rm -rf $(VENV) demo-output .pytest_cache .mypy_cache .ruff_cache *.egg-info
