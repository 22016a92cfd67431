# ticketwar: `make run` runs everything, `make test` passes the tests. Each installs what it needs.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
SERVICES := $(PY) -m ticketwar.devservices

.PHONY: install run test services stop loadtest lint format browser clean

$(VENV)/.installed: requirements.txt
	@command -v python3.11 >/dev/null 2>&1 && PYTHON=python3.11 || PYTHON=python3; \
	  test -x $(PY) || $$PYTHON -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	@touch $@

install: $(VENV)/.installed

run: install
	@$(SERVICES) run

services: install
	@$(SERVICES) start

stop: install
	@$(SERVICES) stop

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# Browser tests drive Debian's chromium; install it when missing (needs root, as in CI).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = "0" ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "error: browser tests need Debian's chromium: run 'sudo apt-get install chromium'." >&2; exit 1; fi; }

# Unless DATABASE_URL/REDIS_URL are set, tests run against private PostgreSQL and Redis
# servers started for this run only. pytest's exit 5 (no tests collected) fails the run.
test: install browser lint
	$(SERVICES) test -- $(PY) -m pytest $(PYTEST_ARGS)

loadtest: install
	$(PY) loadtests/run.py

clean:
	rm -rf $(VENV) staticfiles .pytest_cache .ruff_cache
