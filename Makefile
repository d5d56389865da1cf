# Two entry points for a fresh clone: `make train` and `make test`.
# Each creates/updates the local .venv from pyproject.toml, then runs.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: train test inspect clean

$(STAMP): pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

train: $(STAMP)
	$(VENV)/bin/python train.py $(ARGS)

inspect: $(STAMP)
	$(VENV)/bin/python scripts/inspect_data.py $(ARGS)

test: $(STAMP)
	$(VENV)/bin/python -m pytest $(ARGS)

clean:
	rm -rf $(VENV) outputs multirun
