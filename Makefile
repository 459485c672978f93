# Each target bootstraps .venv (idempotent): the package and its dependencies, reinstalled only when
# pyproject.toml or setup.py changes, then the C++ extension manualgrad._C (the compiled eager path,
# manualgrad/csrc/), rebuilt only when a csrc/*.cpp or *.h file changes (the files compile as two
# translation units, see setup.py; ninja recompiles the units that include what changed; a fresh
# build is ~1.5 min on 2 cores, its output in build/extension.log).
# Without a C++ compiler, or when the build fails, one warning: the Python Functions run instead.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
EXTENSION := build/extension.stamp
CSRC := $(wildcard manualgrad/csrc/*.cpp manualgrad/csrc/*.h)

.PHONY: test train bench board lint format clean ext

$(STAMP): pyproject.toml setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,ext]'
	touch $(STAMP)

$(EXTENSION): $(STAMP) $(CSRC)
	@mkdir -p build
	@echo "building manualgrad._C (the compiled eager path; log: build/extension.log)"
	@PATH="$(CURDIR)/$(BIN):$$PATH" MANUALGRAD_BUILD_EXT=1 MAX_JOBS=2 \
		$(BIN)/python setup.py build_ext --inplace >build/extension.log 2>&1 || true
	@ls manualgrad/_C*.so >/dev/null 2>&1 || echo "warning: manualgrad._C did not build" \
		"(see build/extension.log); the Python Functions run instead" >&2
	@touch $@

ext: $(EXTENSION)

test: $(EXTENSION)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest -q -n 2

train: $(EXTENSION)
	$(BIN)/manualgrad train $(ARGS)

bench: $(EXTENSION)
	$(BIN)/manualgrad bench $(or $(SUITE),all) $(ARGS)

board: $(STAMP)
	$(BIN)/tensorboard --logdir runs --host 127.0.0.1

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) build *.egg-info manualgrad/_C*.so
