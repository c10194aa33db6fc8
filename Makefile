# Two commands for a fresh machine:
#   make run   - the whole product on this machine (embedded Redis + SQLite)
#   make test  - the full test suite (real Redis, eventlet worker, Chromium)
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3

.PHONY: run run-verbose test bench system-deps clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[test,postgres]"
	touch $@

run: $(VENV)/.installed
	$(PY) run.py all

# The same, logging every task run and request (`make run` logs warnings and errors only).
run-verbose: $(VENV)/.installed
	$(PY) run.py all --verbose

# Debian's chromium (Playwright's own browser download does not work here) and
# nginx (its config is checked by `nginx -t`), PostgreSQL (the multi-node test),
# CJK fonts so the pages' Chinese renders in screenshots, and Mono's C#
# compiler with System.ServiceProcess so the Windows service wrapper
# (deploy/windows) is compiled in CI; poppler-utils' pdftotext reads the sale
# confirmation PDF back in the tests; only when missing. PowerShell is not
# packaged for Debian: the check of install-worker.ps1 runs only where pwsh is.
system-deps:
	@missing=""; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing="$$missing nginx-light"; \
	[ -d /usr/share/fonts/opentype/noto ] || missing="$$missing fonts-noto-cjk"; \
	ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || missing="$$missing postgresql"; \
	command -v mcs >/dev/null 2>&1 || missing="$$missing mono-mcs libmono-system-serviceprocess4.0-cil"; \
	command -v pdftotext >/dev/null 2>&1 || missing="$$missing poppler-utils"; \
	if [ -n "$$missing" ]; then \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

test: $(VENV)/.installed system-deps
	$(PY) -m pytest

bench: $(VENV)/.installed
	$(PY) bench/run_all.py

clean:
	rm -rf $(VENV) var .pytest_cache
