# Two commands set up and run everything on a fresh machine:
#   make up    - install what is missing, then run the whole platform offline (Worker, Dagster, a run per source)
#   make test  - install what is missing, then run every test (pytest incl. end-to-end and browser, vitest)
PYTHON ?= python3
UV := $(PYTHON) -m uv

.PHONY: up test install install-python install-node install-browser

install: install-python install-node

install-python:
	@$(PYTHON) -m uv --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet "uv>=0.9"
	$(UV) sync --frozen --extra test

install-node:
	npm ci --no-audit --no-fund --loglevel=error

# Browser tests drive Debian's chromium with Playwright (browser downloads are not used).
install-browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; fi; }

up: install
	.venv/bin/dlt-platform up

test: install install-browser
	.venv/bin/pytest
	npm test
