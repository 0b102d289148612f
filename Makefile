# Two commands set up and run everything on a fresh machine:
#   make up    - install what is missing, then run the whole platform offline (Worker, Dagster, a run per source)
#   make test  - install what is missing, lint and type-check (make lint), then run every test (pytest incl.
#                end-to-end and browser, vitest)
PYTHON ?= python3
UV := $(PYTHON) -m uv

.PHONY: up test lint deploy image install install-python install-node install-debian install-bqemulator

install: install-python install-node install-bqemulator

# --compile-bytecode: every Dagster process (code server, each run worker, `definitions validate`) imports dagster
# and dlt afresh; without .pyc files (PYTHONDONTWRITEBYTECODE, or a read-only venv) each compiles them again, ~3 s
# on 2 cores. The Dockerfile does the same (UV_COMPILE_BYTECODE=1).
install-python:
	@$(PYTHON) -m uv --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet "uv>=0.9"
	$(UV) sync --frozen --extra test --compile-bytecode

install-node:
	npm ci --no-audit --no-fund --loglevel=error

# Debian packages the tests use, installed when missing (one apt-get update for all of them): chromium for the
# browser tests (driven by Playwright; its browser downloads are not used), postgresql for the Dagster instance
# tests (each test session starts a throw-away cluster of its own; the package's default cluster is not used),
# podman, runc and debootstrap to build and run the project's image (`make image`; Docker is not needed).
install-debian:
	@missing=""; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	for tool in podman runc debootstrap; do command -v $$tool >/dev/null 2>&1 || [ -x /usr/sbin/$$tool ] || missing="$$missing $$tool"; done; \
	if [ -n "$$missing" ]; then \
	  sudo=""; [ "$$(id -u)" = 0 ] || sudo="sudo"; \
	  $$sudo apt-get update -qq && $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

# The BigQuery emulator pins its own DuckDB, so it gets its own environment; DuckDB's spatial extension, which
# it needs and cannot download offline, comes from a wheel into the emulator's HOME. Skipped when up to date.
BQEMULATOR := .bqemulator
install-bqemulator: $(BQEMULATOR)/.installed

$(BQEMULATOR)/.installed: tools/bqemulator/requirements.txt tools/bqemulator/install_spatial.py
	@$(PYTHON) -m uv --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet "uv>=0.9"
	$(UV) venv --quiet --allow-existing --python $(PYTHON) $(BQEMULATOR)
	$(UV) pip sync --quiet --python $(BQEMULATOR)/bin/python tools/bqemulator/requirements.txt
	mkdir -p $(BQEMULATOR)/home && HOME=$(CURDIR)/$(BQEMULATOR)/home $(BQEMULATOR)/bin/python tools/bqemulator/install_spatial.py
	touch $@

up: install
	.venv/bin/dlt-platform up

# The project's image as production builds it (docs/deploy.md, "5. The image"), with podman: the stand-in for
# python:3.11-slim once, then the Dockerfile (layers cached). IMAGE=name:tag to tag it otherwise.
image: install-debian
	tools/container/build-image.sh

# Lint, format and types of the Python package, as configured in pyproject.toml ([tool.ruff], [tool.mypy]).
lint: install-python
	.venv/bin/ruff check dlt_platform
	.venv/bin/ruff format --check dlt_platform
	.venv/bin/mypy

# Lint first (a minute; it fails fast), then every test in lanes that run at once (tools/test_lanes.sh: vitest, and
# pytest's e2e, production and unit+orchestration sessions); all must pass.
test: install install-debian lint
	tools/test_lanes.sh

# Deploy or upgrade (docs/deploy.md): D1 migrations --remote, then wrangler deploy, then check-deployment.
# DEPLOY_FLAGS=--local rehearses it against wrangler dev's local D1 and skips the real deploy.
deploy:
	.venv/bin/dlt-platform deploy $(DEPLOY_FLAGS)
