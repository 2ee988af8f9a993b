# batchgen: `make demo` runs the whole pipeline on the simulated API; `make test` checks everything.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The real LiteLLM proxy (tests/test_litellm.py) in its own venv: its pins would fight ours.
LITELLM_VENV ?= .venv-litellm
LITELLM_STAMP := $(LITELLM_VENV)/.installed
LITELLM_BIN ?= $(abspath $(LITELLM_VENV))/bin/litellm
export LITELLM_BIN

.PHONY: demo test lint typecheck unit bench clean chromium test-litellm

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

# The pin is pyproject.toml's `litellm` extra (one place); about 60 s and 760 MB. If it cannot
# be installed, the LiteLLM test is skipped and says why, or fails when CI=true.
$(LITELLM_STAMP): pyproject.toml | $(STAMP)
	test -x $(LITELLM_VENV)/bin/python || $(PYTHON) -m venv $(LITELLM_VENV)
	$(LITELLM_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(LITELLM_VENV)/bin/python -m pip install --quiet "$$($(BIN)/python -c 'import tomllib; \
	  print(tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]["litellm"][0])')" \
	  && touch $@ || echo "litellm could not be installed: tests/test_litellm.py will be skipped," \
	     "or fail when CI=true"

lint: $(STAMP)
	$(BIN)/ruff check batchgen tests benchmarks
	$(BIN)/ruff format --check batchgen tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP) chromium $(LITELLM_STAMP)
	$(BIN)/pytest -q

# Only the tests that run the real LiteLLM proxy (about 30 s once it is installed).
test-litellm: $(STAMP) $(LITELLM_STAMP)
	$(BIN)/pytest -q -m litellm -p no:cacheprovider

# Figures, not tests: prints a table (README, "Performance"). `make bench ARGS=--quick` for a smoke run.
bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	$(BIN)/python -m benchmarks.bench $(ARGS)

clean:
	rm -rf $(VENV) $(LITELLM_VENV) demo-output .pytest_cache .mypy_cache .ruff_cache *.egg-info
