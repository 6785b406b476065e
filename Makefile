# Two commands set everything up on a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# pip's own global index settings can print one warning per missing mirror folder; hide only those.
QUIET := 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
# The project's machines keep torch's CPU wheel in /opt/wheels (also named by PIP_FIND_LINKS there); naming
# the folder here keeps make working when that variable or the user's pip.conf is absent (an empty HOME).
WHEELS := $(if $(wildcard /opt/wheels),--find-links /opt/wheels)
PIP := $(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt $(WHEELS)
DEMO_OUT ?= out/demo

.PHONY: demo test lint bench clean keras-fixtures keras-check

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed-run: pyproject.toml constraints.txt | $(BIN)/python
	$(PIP) -e . $(QUIET)
	touch $@

$(VENV)/.installed-test: pyproject.toml constraints.txt | $(BIN)/python
	$(PIP) -e ".[test,dev]" $(QUIET)
	touch $@ $(VENV)/.installed-run

demo: $(VENV)/.installed-run
	DEMO_OUT=$(DEMO_OUT) CNNLAB=$(BIN)/cnnlab bash scripts/demo.sh

# The tests also need Keras on TensorFlow (its own venv) to load the .keras files cnnlab exports.
test: $(VENV)/.installed-test .venv-peers/.installed
	bash scripts/system-deps.sh
	$(BIN)/python -m pytest

lint: $(VENV)/.installed-test
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/ruff format --check src tests benchmarks examples

# The peer implementations live in their own venv so TensorFlow never touches cnnlab's.
.venv-peers/.installed: benchmarks/peers/requirements.txt
	$(PYTHON) -m venv .venv-peers
	.venv-peers/bin/python -m pip install --quiet --disable-pip-version-check -r benchmarks/peers/requirements.txt $(QUIET)
	touch $@

# The Keras files the Keras-import tests read, made by real Keras on TensorFlow (committed; rerun to refresh)
keras-fixtures: $(VENV)/.installed-run .venv-peers/.installed
	mkdir -p out
	$(BIN)/python -c "import cnnlab, numpy as np; d = cnnlab.data.load('fashion-mnist'); \
		np.savez('out/fashion-arrays.npz', x_train=d.train.x, y_train=d.train.y, x_test=d.test.x, y_test=d.test.y)"
	.venv-peers/bin/python benchmarks/peers/keras_fixtures.py tests/fixtures/keras out/fashion-arrays.npz

# cnnlab's .keras files loaded by Keras on TensorFlow: the tests of the suite that check it
keras-check: $(VENV)/.installed-test .venv-peers/.installed
	$(BIN)/python -m pytest -q tests/run/test_export.py tests/nn/test_keras_applications.py -k "keras_on_tensorflow or load_in_keras"

# make bench ONLY=train,zoo reruns some sections and keeps the others' last results;
# make bench ONLY=recipes RECIPES=res reruns one recipe and keeps the other recipes' rows
bench: $(VENV)/.installed-test .venv-peers/.installed
	@command -v wrk >/dev/null || apt-get install -y -qq wrk >/dev/null 2>&1 || \
		echo "wrk not installed: the serve load test uses Python clients instead"
	$(BIN)/python benchmarks/run.py --out benchmarks/results $(if $(ONLY),--only $(ONLY))$(if $(RECIPES), --recipes $(RECIPES))

clean:
	rm -rf $(VENV) .venv-peers out .pytest_cache
