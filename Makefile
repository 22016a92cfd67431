# ticketwar: `make run` runs everything, `make test` passes the tests. Each installs what it needs.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
SERVICES := $(PY) -m tools.devservices

.PHONY: install run test test-fast services stop loadtest lint format test-tools screenshots clean messages

# The runtime (requirements.txt, all the image installs) and the workshop on top of it
# (requirements-dev.txt: tests, load tests, the embedded servers, lint).
$(VENV)/.installed: requirements.txt requirements-dev.txt
	@command -v python3.11 >/dev/null 2>&1 && PYTHON=python3.11 || PYTHON=python3; \
	  test -x $(PY) || $$PYTHON -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
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

# Tools the tests drive: Debian's chromium (browser tests), docker-compose (validates
# docker-compose.yml without an engine), promtool (checks the Prometheus alert rules), haproxy
# (the load balancer of the fault drill, loadtests/faults.py), stunnel4 and openssl
# (Redis over TLS, as Upstash serves it), pgbouncer (Supabase's transaction pooler), gettext
# (the translation tests regenerate the catalogs; `make run` needs none: the .mo files are committed)
# and nginx (deploy/nginx/nginx.conf in front of the real web and ws processes).
TEST_TOOLS := chromium:chromium docker-compose:docker-compose promtool:prometheus haproxy:haproxy \
	stunnel4:stunnel4 openssl:openssl pgbouncer:pgbouncer msgfmt:gettext xgettext:gettext nginx:nginx
test-tools:
	@missing=""; for pair in $(TEST_TOOLS); do command -v $${pair%%:*} >/dev/null 2>&1 || missing="$$missing $${pair##*:}"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = "0" ]; then echo "installing$$missing (Debian packages)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "error: the tests need Debian packages:$$missing (run: sudo apt-get install$$missing)" >&2; exit 1; fi; \
	fi

# Unless DATABASE_URL/REDIS_URL are set, tests run against private PostgreSQL and Redis
# servers started for this run only. pytest's exit 5 (no tests collected) fails the run.
test: install test-tools lint
	$(SERVICES) test -- $(PY) -m pytest $(PYTEST_ARGS)

# The inner loop: lint and every test that needs neither a browser nor seconds of racing.
test-fast: install lint
	$(SERVICES) test -- $(PY) -m pytest -m "not browser and not slow" $(PYTEST_ARGS)

# Refresh the Indonesian catalogs from the code, then compile them (commit the .po and .mo files).
messages: install test-tools
	$(PY) manage.py update_messages

loadtest: install
	$(PY) -m loadtests.run

clean:
	rm -rf $(VENV) staticfiles .pytest_cache .ruff_cache

# Refresh the screenshots under docs/screenshots/ (the browser tests take them).
screenshots: install test-tools
	UPDATE_SCREENSHOTS=1 $(SERVICES) test -- $(PY) -m pytest -q -m browser
