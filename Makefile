# Tooling for minray. `make demo` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint format bench bench-compare flamegraphs clean

# The editable install's compat mode puts the project on sys.path, so a folder named
# `minray` where a script runs (a student's work, an old session root) cannot shadow
# the package; plain editable mode where a setuptools no longer has compat mode.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]' --config-settings editable_mode=compat 2>/dev/null \
		|| $(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python examples/quickstart.py

test: $(STAMP)
	$(BIN)/python -m pytest -q tests

lint: $(STAMP)
	$(BIN)/ruff check minray tests examples benchmarks
	$(BIN)/ruff format --check minray tests examples benchmarks

format: $(STAMP)
	$(BIN)/ruff format minray tests examples benchmarks

bench: $(STAMP)
	$(BIN)/python benchmarks/core.py

# Ray lives in its own virtualenv, never in minray's dependencies.
RAY := .bench/ray/bin/python
$(RAY):
	$(PYTHON) -m venv .bench/ray
	.bench/ray/bin/pip install -q 'ray==2.60.0' numpy psutil matplotlib

bench-compare: $(STAMP) $(RAY)
	$(BIN)/python benchmarks/compare.py --ray-python $(RAY)

# py-spy samples running processes; it is a profiling tool, not a dependency
flamegraphs: $(STAMP)
	$(BIN)/pip install -q py-spy
	$(BIN)/python benchmarks/flamegraphs.py

clean:
	rm -rf $(VENV) build *.egg-info
