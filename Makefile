# One venv, one pin file: torch comes from constraints.txt (the CPU wheel), everything else from pyproject.toml.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
export HF_HUB_OFFLINE := 1

.PHONY: setup chat test eval bench clean

$(BIN)/qa: pyproject.toml constraints.txt
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e '.[test]'
	touch $@

setup: $(BIN)/qa

chat: setup          ## index seeds/ (first run) and serve the chat on http://127.0.0.1:7860
	$(BIN)/qa serve

test: setup          ## the whole suite: unit, CLI, server and browser tests
	$(BIN)/python -m pytest

eval: setup
	$(BIN)/qa eval --baselines

bench: setup         ## seeds + synthetic 100k, load test, real-text scale, answer pool (see README "Benchmarks")
	$(BIN)/pip install -q -c constraints.txt -e '.[test,bench]'
	$(BIN)/python bench/run.py
	$(BIN)/python bench/load.py
	$(BIN)/python bench/scale.py
	$(BIN)/python bench/answer_pool.py

clean:
	rm -rf .qa-index test-output
