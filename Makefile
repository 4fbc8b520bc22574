# The two commands a newcomer needs: `make run` and `make test` (see README.md).
SHELL := /bin/bash
UV_VERSION := 0.13.9
PYTHON ?= $(shell command -v python3.11 || command -v python3)
UV := .tools/bin/uv
VENV := .venv
BIN := $(VENV)/bin
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: run test install install-dev assets system-deps lint clean

run: install assets
	$(BIN)/campaign db upgrade
	$(BIN)/campaign demo --if-empty
	$(BIN)/campaign serve

test: install-dev assets system-deps lint
	$(BIN)/pytest

lint:
	$(BIN)/ruff check campaign tests $(wildcard bench)
	$(BIN)/ruff format --check campaign tests $(wildcard bench)
	$(BIN)/mypy campaign

$(UV):
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

# Runtime packages only; --inexact keeps test tools that `make test` installed.
install: $(UV)
	$(UV) sync --frozen --inexact --no-default-groups --python $(PYTHON)

install-dev: $(UV)
	$(UV) sync --frozen --python $(PYTHON)

assets: campaign/static/vendor/.built

campaign/static/vendor/.built: package.json package-lock.json scripts/copy-assets.mjs
	npm ci --no-audit --no-fund --loglevel=error
	npm run --silent build
	touch $@

# PostgreSQL and Chromium come from Debian packages. As root they are installed when missing;
# otherwise the tests say what is missing (and fail under CI=true).
system-deps:
	@missing=""; \
	ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || command -v pg_ctl >/dev/null || missing="$$missing postgresql"; \
	[ -x /usr/bin/chromium ] || missing="$$missing chromium"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing$$missing from Debian packages"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else \
	    echo "missing system packages:$$missing (run 'sudo apt-get install -y$$missing')"; \
	  fi; \
	fi

clean:
	rm -rf $(VENV) .tools node_modules campaign/static/vendor .pytest_cache .mypy_cache .ruff_cache
