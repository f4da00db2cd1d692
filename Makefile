# The verbs. `make run` and `make test` are the two commands of the README.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
VLM_STAMP := $(VENV)/.installed-vlm

.PHONY: setup vlm run demo test check fmt clean

setup: $(STAMP)
	@scripts/setup-media

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	@touch $@

# torch (CPU build, about 0.75 GB on disk) for the in-process models that have no ONNX export, and for CUDA.
# `make run` does not need it (livesight/smolvlm-256m runs on onnxruntime on a CPU); the tests do.
vlm: $(VLM_STAMP)

$(VLM_STAMP): $(STAMP)
	$(PY) -m pip install -q -e '.[dev,vlm]'
	@touch $@

run: setup
	$(VENV)/bin/livesight serve

demo: setup
	$(VENV)/bin/livesight demo

test: setup vlm
	@scripts/setup-media --browser
	scripts/check

# The static checks of scripts/check (lint, format, strict types, import layers), without the tests.
# Benchmarks have no target: each is its own command in docs/benchmarks.md.
check: setup
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

fmt: setup
	$(VENV)/bin/ruff format src tests bench scripts
	$(VENV)/bin/ruff check --fix src tests bench

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .hypothesis
