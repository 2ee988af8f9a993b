# batchgen: `make demo` runs the whole pipeline on the simulated API; `make test` checks everything.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck unit bench clean chromium

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	rm -rf demo-output && mkdir -p demo-output
	$(BIN)/batchgen run manifests/example.yaml --mock --out demo-output/example.results.csv \
	  --rpm 600 --wait --download demo-output/videos --variant thumbnail --poll-interval 1
	$(BIN)/batchgen report demo-output/example.results.csv --html demo-output/report.html

test: chromium lint typecheck unit

# The HTML report's tests drive Debian's chromium (never a browser playwright downloads).
# CI runs as root with no stdin; elsewhere, without root, the browser tests skip and say why.
chromium:
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
	  && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } \
	  || echo "chromium is not installed and could not be (needs root and apt-get):" \
	     "the browser tests will be skipped, or fail when CI=true"

lint: $(STAMP)
	$(BIN)/ruff check batchgen tests benchmarks
	$(BIN)/ruff format --check batchgen tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP) chromium
	$(BIN)/pytest -q

# Figures, not tests: prints a table (README, "Performance"). `make bench ARGS=--quick` for a smoke run.
bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	$(BIN)/python -m benchmarks.bench $(ARGS)

clean:
	rm -rf $(VENV) demo-output .pytest_cache .mypy_cache .ruff_cache *.egg-info
