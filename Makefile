# One venv, one pin file: torch comes from constraints.txt (the CPU wheel), everything else from pyproject.toml.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 7860
export HF_HUB_OFFLINE := 1

.PHONY: setup chat test eval bench clean

# pip's own lines are the progress: a first set-up installs about 2.6 GB (torch CPU, Chroma, Gradio) and takes
# minutes; a silent -q looked like a hang.
$(BIN)/qa: pyproject.toml constraints.txt
	@echo "Setting up $(VENV): the first time downloads and installs the dependencies (several minutes)..."
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install --progress-bar on -c constraints.txt -e '.[test]'
	touch $@
	@echo "Set up. Run the command line as $(BIN)/qa (or: source $(BIN)/activate, then qa)."

setup: $(BIN)/qa

chat: setup          ## index seeds/ (first run) and serve the chat on http://127.0.0.1:7860; Ctrl-C stops it
	@# Ctrl-C (or a SIGTERM) is how it stops, so its exit 130 (143) is no error. In a terminal, job control (-m)
	@# gives the server the terminal: the Ctrl-C reaches it alone, not make too ("make: *** ... Interrupt").
	@echo "Starting the chat (the first run indexes seeds/ first). Ctrl-C stops it."
	@serve='$(BIN)/qa serve --port $(PORT); s=$$?; [ $$s -eq 130 ] || [ $$s -eq 143 ] || exit $$s'; \
	if [ -t 0 ]; then bash -mc "$$serve"; else bash -c "$$serve"; fi

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
