# UnitScope: `make demo` sets up and serves the app on the demo; `make test` sets up and runs the tests.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.unitscope-installed

.PHONY: setup demo test test-fast browser bench clean

setup: $(STAMP)

# torch first: 2.13.0 is a CPU wheel on these machines; the project's range accepts it, so
# pip pulls no multi-GB CUDA build afterwards.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e ".[test]"
	touch $(STAMP)

# Debian's Chromium for the browser tests (Playwright drives it; nothing is downloaded by Playwright).
browser:
	@if [ ! -x /usr/bin/chromium ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "Chromium missing: run 'sudo apt-get install -y chromium' (browser tests need /usr/bin/chromium)"; exit 1; fi; \
	fi

demo: setup
	$(BIN)/panel serve launch.py --address localhost --show --num-threads 2

test: setup browser
	$(BIN)/python -m pytest --ui

# without the browser tests
test-fast: setup
	$(BIN)/python -m pytest

bench: setup
	$(BIN)/unitscope bench train

clean:
	rm -rf $(VENV) .pytest_cache
