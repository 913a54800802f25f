# `make demo` and `make test` work on a fresh machine: both create .venv first if missing.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# DeepSpeed builds a C++ comm op on first use (~50 s); keep it across runs.
export TORCH_EXTENSIONS_DIR ?= $(HOME)/.cache/torch_extensions

.PHONY: install demo test lint clean

install: $(STAMP)

# constraints.txt: the dependency versions `make test` last passed with (a fresh clone gets them).
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install -c constraints.txt -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/perceiver-pipeline demo

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check perceiver preprocessing pipelines tests benchmarks
	$(BIN)/ruff format --check perceiver preprocessing pipelines tests benchmarks
	$(BIN)/mypy

clean:
	rm -rf demo-output mlflow.db mlartifacts mlruns perceiver-logs
