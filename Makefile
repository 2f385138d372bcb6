# Two commands on a fresh clone:  `make demo`  and  `make test`.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: setup demo test lint bench-smoke clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	# torch is pinned (in the export extra) to the CPU build: unpinned, pip picks a multi-GB CUDA one.
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -e '.[embed,export,dev]'
	# Export MiniLM to ONNX once (into $$TIERMEM_MODELS, default ~/.cache/tiermem/models): at run
	# time the embedder needs onnxruntime only, never torch.
	$(VENV)/bin/tiermem models export
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/tiermem demo

test: $(STAMP)
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check memory adapters bench tests
	$(VENV)/bin/mypy memory

bench-smoke: $(STAMP)
	$(VENV)/bin/python -m pytest tests/bench -q

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
