# The README's two commands are `make demo` and `make test`; everything else serves them.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cksum < requirements.txt | cut -d' ' -f1)
TEST_ENV := DJANGO_SETTINGS_MODULE=bankside.settings.test

.PHONY: demo test check lint format services compose-config screenshots bench bench-audit clean

$(STAMP): requirements.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "bankside needs Python 3.11 or newer; set PYTHON=/path/to/python3.11")'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	@$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	@rm -f $(VENV)/.installed-* && touch $@

## demo: install, migrate and run the portal with a Celery worker and beat beside it
demo: $(STAMP)
	@$(PY) manage.py migrate --noinput
	@$(PY) manage.py run_demo

## test: install, check, and run the whole suite against real PostgreSQL and Redis
test: $(STAMP) check services
	@$(TEST_ENV) $(PY) -m pytest $(PYTEST_ARGS)

check: $(STAMP) lint
	@$(TEST_ENV) $(PY) manage.py makemigrations --check --dry-run
	@$(TEST_ENV) $(PY) manage.py check --fail-level WARNING
	@$(TEST_ENV) $(PY) manage.py spectacular --validate --fail-on-warn --file /dev/null

lint: $(STAMP)
	@$(VENV)/bin/ruff check .
	@$(VENV)/bin/ruff format --check .

format: $(STAMP)
	@$(VENV)/bin/ruff check --fix .
	@$(VENV)/bin/ruff format .

services: $(STAMP)
	@$(TEST_ENV) $(PY) manage.py check_services

## screenshots: run the browser tests and keep their screenshots in docs/screenshots
screenshots: $(STAMP) services
	@$(TEST_ENV) BANKSIDE_SCREENSHOT_DIR=$(CURDIR)/docs/screenshots $(PY) -m pytest -m browser -q

## bench: measure events ingest, then delivery by Celery workers (figures only)
bench: $(STAMP) services
	@$(TEST_ENV) $(PY) bench/ingest.py $(BENCH_ARGS)
	@$(TEST_ENV) $(PY) bench/delivery.py $(DELIVERY_BENCH_ARGS)

## bench-audit: stream 100,000 audit entries as CSV and JSON Lines; time and peak memory
bench-audit: $(STAMP) services
	@$(TEST_ENV) $(PY) bench/audit_export.py $(BENCH_ARGS)

compose-config:
	@command -v docker-compose >/dev/null || { echo "docker-compose is not installed (Debian: apt-get install docker-compose)"; exit 1; }
	@tmp=$$(mktemp -d) && cp docker-compose.yml Dockerfile $$tmp/ && cp .env.example $$tmp/.env \
	  && docker-compose -f $$tmp/docker-compose.yml config --quiet \
	  && echo "docker-compose.yml: valid (with .env.example as .env)"; status=$$?; rm -rf $$tmp; exit $$status

clean:
	rm -rf $(VENV) var .pytest_cache
