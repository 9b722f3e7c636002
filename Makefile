# Two commands set everything up on a fresh machine (Python >= 3.10, make):
#   make demo   create .venv, install dmt, run the offline demo
#   make test   create/update .venv with the dev extra, run the whole suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# On machines where PyPI's default torch is a multi-GB CUDA build this is the
# same pair the project is tested with; any torch>=2.1 works (see pyproject.toml).
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1

.PHONY: demo test install install-dev bench soak clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.torch: | $(BIN)/python
	$(BIN)/python -m pip install -q $(TORCH_SPEC) || $(BIN)/python -m pip install -q torch torchvision
	touch $@

$(VENV)/.installed: pyproject.toml $(VENV)/.torch
	$(BIN)/python -m pip install -q -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml $(VENV)/.installed
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

demo: install
	$(BIN)/dmt demo --out runs/demo

test: install-dev
	$(BIN)/python -m pytest -q

bench: install-dev
	$(BIN)/python benchmarks/run.py

# not in CI (minutes): a small run killed SOAK_ROUNDS times (SIGKILL or SIGTERM at random) must end
# with exactly the results and model tensors of an uninterrupted one
SOAK_ROUNDS ?= 8
soak: install-dev
	$(BIN)/python benchmarks/soak.py --rounds $(SOAK_ROUNDS) --out runs/soak

clean:
	rm -rf $(VENV) build src/*.egg-info
