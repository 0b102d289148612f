# Two commands set up and run everything on a fresh machine:
#   make up    - install what is missing, then run the platform offline on this machine
#   make test  - install what is missing, then run every test (Python and Worker)
PYTHON ?= python3
UV := $(PYTHON) -m uv

.PHONY: up test install install-python install-node

install: install-python install-node

install-python:
	@$(PYTHON) -m uv --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet "uv>=0.9"
	$(UV) sync --frozen --extra test

install-node:
	@if [ -f package-lock.json ]; then npm ci --no-audit --no-fund --loglevel=error; fi

up: install
	.venv/bin/dlt-platform up

test: install
	.venv/bin/pytest
	@if [ -f package-lock.json ]; then npm test; fi
