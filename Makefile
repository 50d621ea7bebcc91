# Tooling for minray. `make demo` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test course-check lint format bench bench-compare bench-spill flamegraphs clean

# The editable install's compat mode puts the project on sys.path, so a folder named
# `minray` where a script runs (a student's work, an old session root) cannot shadow
# the package; plain editable mode where a setuptools no longer has compat mode.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]' --config-settings editable_mode=compat 2>/dev/null \
		|| $(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

# minray's bytecode is written first: where PYTHONDONTWRITEBYTECODE is set, each fresh
# node, zygote and driver would compile minray from source (~0.2 s each) instead
demo: $(STAMP)
	$(BIN)/python -m compileall -q minray > /dev/null
	$(BIN)/python examples/quickstart.py

# A test that fails is run again, up to twice (pytest-rerunfailures: many tests here start
# real processes on a shared 2-core machine); the summary names every rerun and shows how
# its first try failed, so a flaky test is seen and mended, not hidden
test: $(STAMP)
	$(BIN)/python -m compileall -q minray > /dev/null
	$(BIN)/python -m pytest -q -raR --reruns 2 --reruns-delay 1 tests

# The course pack (docs/course): `make course-check EX=3` checks exercise 3's starter.py,
# the file a student edits; SOLUTION=1 checks its solution.py instead.
course-check: $(STAMP)
	@test -n "$(EX)" || { echo "usage: make course-check EX=N [SOLUTION=1]"; exit 2; }
	$(BIN)/python -m pytest -q -p no:cacheprovider \
		docs/course/ex$$(printf %02d $$(expr $(EX) + 0))_*/check_*.py \
		--answer=$(if $(SOLUTION),solution,starter)

lint: $(STAMP)
	$(BIN)/ruff check minray tests examples benchmarks docs/course
	$(BIN)/ruff format --check minray tests examples benchmarks docs/course

format: $(STAMP)
	$(BIN)/ruff format minray tests examples benchmarks docs/course

bench: $(STAMP)
	$(BIN)/python benchmarks/core.py

# Ray lives in its own virtualenv, never in minray's dependencies.
RAY := .bench/ray/bin/python
$(RAY):
	$(PYTHON) -m venv .bench/ray
	.bench/ray/bin/pip install -q 'ray==2.60.0' numpy psutil matplotlib

bench-compare: $(STAMP) $(RAY)
	$(BIN)/python benchmarks/compare.py --ray-python $(RAY)

# spilling to disk: a 256 MiB store, 1 GiB put and read back, beside Ray
bench-spill: $(STAMP) $(RAY)
	$(BIN)/python benchmarks/spill.py --ray-python $(RAY)

# py-spy samples running processes; it is a profiling tool, not a dependency
flamegraphs: $(STAMP)
	$(BIN)/pip install -q py-spy
	$(BIN)/python benchmarks/flamegraphs.py

clean:
	rm -rf $(VENV) build *.egg-info
