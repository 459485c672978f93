# Each target bootstraps .venv (idempotent: the stamp is rebuilt only when pyproject.toml changes).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test train bench board lint format clean ext

$(STAMP): pyproject.toml setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest -q -n 2

train: $(STAMP)
	$(BIN)/manualgrad train $(ARGS)

bench: $(STAMP)
	$(BIN)/manualgrad bench $(or $(SUITE),all) $(ARGS)

# The compiled eager path (manualgrad/csrc, optional; 2-6 min on 2 shared cores): see setup.py.
ext: $(STAMP)
	MANUALGRAD_BUILD_EXT=1 $(BIN)/python setup.py build_ext --inplace

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
