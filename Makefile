# The two commands of README: `make demo` and `make test`. Both install first when needed.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
EXTRAS ?= cpu,dev
PYTEST_ARGS ?=

.PHONY: install demo test test-slow lint clean

install: $(STAMP)

# Recreated when missing or stale: a broken interpreter, or packaging files newer than the stamp.
$(STAMP): pyproject.toml setup.py tests/plugins/verticals-echo/pyproject.toml
	@if ! $(BIN)/python -c "import sys; assert sys.version_info[:2] == (3, 11)" 2>/dev/null; then \
		rm -rf $(VENV) && $(PYTHON) -m venv $(VENV); fi
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "torch==2.13.0"
	$(BIN)/python -m pip install --quiet -e ".[$(EXTRAS)]"
	$(BIN)/python -m pip uninstall --quiet --yes verticals-testplugin 2>/dev/null || true  # its old name
	$(BIN)/python -m pip install --quiet --no-deps -e tests/plugins/verticals-echo
	touch $(STAMP)

demo: install
	$(BIN)/verticals demo

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-slow: install
	$(BIN)/python -m pytest -m slow $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check core apps domains shared_models tests scripts

clean:
	rm -rf $(VENV) build *.egg-info
