# The README's two commands are `make demo` and `make test`; everything else serves them.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cksum < requirements.txt | cut -d' ' -f1)
TEST_ENV := DJANGO_SETTINGS_MODULE=bankside.settings.test
SCHEMA := docs/openapi.yaml
# The real OpenID provider the linking tests run (Node.js), installed like the venv: again
# whenever its lock file changes.
OIDC_PEER  := linking/tests/oidc_peer
NODE_STAMP := $(OIDC_PEER)/node_modules/.installed-$(shell cksum < $(OIDC_PEER)/package-lock.json | cut -d' ' -f1)
# axe-core, which the browser tests inject into the customer pages, installed the same way.
AXE       := core/tests/axe
AXE_STAMP := $(AXE)/node_modules/.installed-$(shell cksum < $(AXE)/package-lock.json | cut -d' ' -f1)

.PHONY: demo test check imports mypy mypy-baseline schema messages lint format services compose-config screenshots bench bench-urgent bench-scale bench-instructions bench-against chaos bench-audit clean

$(STAMP): requirements.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "bankside needs Python 3.11 or newer; set PYTHON=/path/to/python3.11")'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	@$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	@rm -f $(VENV)/.installed-* && touch $@

$(NODE_STAMP): $(OIDC_PEER)/package-lock.json
	@if ! command -v npm >/dev/null; then \
	  echo "npm not found: the tests that run a real OpenID provider will fail (they need Node.js 20.19+ and npm)"; \
	elif npm ci --prefix $(OIDC_PEER) --no-audit --no-fund --loglevel=error; then \
	  touch $@; \
	else \
	  echo "npm ci failed in $(OIDC_PEER): the tests that run a real OpenID provider will fail"; \
	fi

$(AXE_STAMP): $(AXE)/package-lock.json
	@if ! command -v npm >/dev/null; then \
	  echo "npm not found: the browser tests' accessibility checks (axe-core) will fail"; \
	elif npm ci --prefix $(AXE) --no-audit --no-fund --loglevel=error; then \
	  touch $@; \
	else \
	  echo "npm ci failed in $(AXE): the browser tests' accessibility checks will fail"; \
	fi

## demo: install, migrate, then run the portal, worker, beat, demo seed and simulated core
demo: $(STAMP)
	@$(PY) manage.py migrate --noinput
	@$(PY) manage.py run_demo

## test: install, check, and run the whole suite against real PostgreSQL and Redis
test: $(STAMP) $(NODE_STAMP) $(AXE_STAMP) check services
	@$(TEST_ENV) $(PY) -m pytest $(PYTEST_ARGS)

check: $(STAMP) lint imports mypy
	@$(TEST_ENV) $(PY) manage.py makemigrations --check --dry-run
	@$(TEST_ENV) $(PY) manage.py check --fail-level WARNING
	@tmp=$$(mktemp) && $(TEST_ENV) $(PY) manage.py spectacular --validate --fail-on-warn --file $$tmp \
	  && { diff -u --label "$(SCHEMA) (committed)" --label "$(SCHEMA) (from the code)" $(SCHEMA) $$tmp \
	  || { echo "The API's schema differs from $(SCHEMA) (diff above). Regenerate it: make schema"; false; }; }; \
	  status=$$?; rm -f $$tmp; exit $$status
	@$(VENV)/bin/openapi-spec-validator $(SCHEMA) \
	  || { echo "$(SCHEMA) is not a valid OpenAPI document: openapi-spec-validator says why, above"; false; }

## schema: write the OpenAPI schema the code describes to docs/openapi.yaml (commit it)
schema: $(STAMP)
	@$(TEST_ENV) $(PY) manage.py spectacular --validate --fail-on-warn --file $(SCHEMA)
	@$(VENV)/bin/openapi-spec-validator $(SCHEMA) >/dev/null
	@echo "wrote $(SCHEMA)"

## messages: extract bankside's words for customers into locale/<language>/LC_MESSAGES/django.po
## (GNU gettext's xgettext, a translator's tool) and compile them to the .mo files beside
## them with Babel (pure Python). Commit both: a fresh machine needs no gettext.
messages: $(STAMP)
	@$(TEST_ENV) $(PY) manage.py makemessages -l fr -l de -l es --no-obsolete --no-location \
	  --ignore=var --ignore=sandbox --ignore=bench --ignore='*/tests/*'
	@$(VENV)/bin/pybabel compile -d locale -D django --statistics

## imports: the layers of DESIGN.md (pyproject.toml's import-linter contracts)
imports: $(STAMP)
	@$(VENV)/bin/lint-imports --no-cache --no-logo

## mypy: the types. messenger, core and every services module are strict with no baseline;
## elsewhere an error recorded in mypy-baseline.txt is let through, any other fails, and so
## does a recorded error that is gone (re-record then: the baseline only shrinks)
# The strict modules' files, of which mypy-baseline.txt may hold no error.
MYPY_STRICT := ^(messenger/|core/|portal/services/|linking/services[./]|notifications/services/|conversation/services/)
mypy: $(STAMP)
	@! grep -E '$(MYPY_STRICT)' mypy-baseline.txt \
	  || { echo "mypy-baseline.txt records errors of strict modules (above): fix them instead"; false; }
	@out=$$($(TEST_ENV) $(VENV)/bin/mypy --no-pretty --no-error-summary --no-color-output); \
	  status=$$?; if [ $$status -gt 1 ]; then echo "$$out"; exit $$status; fi; \
	  left=$$(echo "$$out" | $(VENV)/bin/mypy-baseline filter --hide-stats); status=$$?; \
	  if [ $$status -ne 0 ] || echo "$$left" | grep -q ': error:'; then echo "$$left"; \
	  echo "mypy: new errors above, or errors of mypy-baseline.txt that are gone (then: make mypy-baseline)"; false; fi

## mypy-baseline: record mypy's errors outside the strict modules in mypy-baseline.txt. Only
## to shrink it after fixing errors: a new error is fixed, never recorded
mypy-baseline: $(STAMP)
	@out=$$($(TEST_ENV) $(VENV)/bin/mypy --no-pretty --no-error-summary --no-color-output); \
	  status=$$?; if [ $$status -gt 1 ]; then echo "$$out"; exit $$status; fi; \
	  echo "$$out" | $(VENV)/bin/mypy-baseline sync

lint: $(STAMP)
	@$(VENV)/bin/ruff check .
	@$(VENV)/bin/ruff format --check .

format: $(STAMP)
	@$(VENV)/bin/ruff check --fix .
	@$(VENV)/bin/ruff format .

services: $(STAMP)
	@$(TEST_ENV) $(PY) manage.py check_services

## screenshots: run the browser tests and keep their screenshots in docs/screenshots
screenshots: $(STAMP) $(AXE_STAMP) services
	@$(TEST_ENV) BANKSIDE_SCREENSHOT_DIR=$(CURDIR)/docs/screenshots $(PY) -m pytest -m browser -q

## bench: measure events ingest, the API under gunicorn, then delivery by Celery workers
## (with the bytes kept per delivered notification, and a Page against a Send API answering
## in the Graph API's time), delivery's CPU per message against an earlier commit, dropping a
## month of outcomes while outcomes are written, fraud alerts through a Page's routine
## backlog, one bank against four across a network hop, tables grown to 5,000,000 events,
## then the API's instructions per event under valgrind (figures only)
bench: $(STAMP) services
	@$(TEST_ENV) $(PY) bench/ingest.py $(BENCH_ARGS)
	@$(TEST_ENV) $(PY) bench/api.py $(API_BENCH_ARGS)
	@$(TEST_ENV) $(PY) bench/delivery.py $(DELIVERY_BENCH_ARGS)
	@$(TEST_ENV) $(PY) bench/against.py $(AGAINST_BENCH_ARGS)
	@$(TEST_ENV) $(PY) bench/partitions.py $(PARTITIONS_BENCH_ARGS)
	@$(TEST_ENV) $(PY) bench/urgent.py $(URGENT_BENCH_ARGS)
	@$(TEST_ENV) $(PY) bench/scale.py $(SCALE_BENCH_ARGS)
	@$(TEST_ENV) $(PY) bench/growth.py $(GROWTH_BENCH_ARGS)
	@$(TEST_ENV) $(PY) bench/instructions.py $(INSTRUCTIONS_BENCH_ARGS)

## bench-scale: one bank's single-event ingest against four banks' with 1, 2 and 4 web
## processes, PostgreSQL direct and a network hop away (a latency proxy), with lock waits;
## then ingest and delivery at 20,000 stored events against 5,000,000 (bench/growth.py)
bench-scale: $(STAMP) services
	@$(TEST_ENV) $(PY) bench/scale.py $(SCALE_BENCH_ARGS)
	@$(TEST_ENV) $(PY) bench/growth.py $(GROWTH_BENCH_ARGS)

## bench-against: delivery's CPU per message, this code against an earlier commit
## (AGAINST_BENCH_ARGS="--reference ce49cf0 --rounds 3"), in turns in one run
bench-against: $(STAMP) services
	@$(TEST_ENV) $(PY) bench/against.py $(AGAINST_BENCH_ARGS)

## bench-urgent: fraud alerts through one Page's routine backlog, today's design beside
bench-urgent: $(STAMP) services
	@$(TEST_ENV) $(PY) bench/urgent.py $(URGENT_BENCH_ARGS)

## bench-instructions: the API's CPU instructions per event, counted by valgrind (steady
## where rates drift with the machine's load: the figure to compare code changes by)
bench-instructions: $(STAMP) services
	@$(TEST_ENV) $(PY) bench/instructions.py $(INSTRUCTIONS_BENCH_ARGS)

## chaos: deliver 10,000 events while workers and a web process are killed, Redis and PostgreSQL
## restart and the Send API fails calls and drops echoes; each reaches its person once, in order.
## It starts its own PostgreSQL cluster and Redis (needs initdb, pg_ctl and redis-server)
chaos: $(STAMP)
	@$(TEST_ENV) $(PY) bench/chaos.py $(CHAOS_ARGS)

## bench-audit: stream 100,000 audit entries as CSV and JSON Lines; time and peak memory
bench-audit: $(STAMP) services
	@$(TEST_ENV) $(PY) bench/audit_export.py $(BENCH_ARGS)

compose-config:
	@command -v docker-compose >/dev/null || { echo "docker-compose is not installed (Debian: apt-get install docker-compose)"; exit 1; }
	@tmp=$$(mktemp -d) && cp -r docker-compose.yml Dockerfile docker $$tmp/ && cp .env.example $$tmp/.env \
	  && docker-compose -f $$tmp/docker-compose.yml config --quiet \
	  && echo "docker-compose.yml: valid (with .env.example as .env)"; status=$$?; rm -rf $$tmp; exit $$status

clean:
	rm -rf $(VENV) var .pytest_cache $(OIDC_PEER)/node_modules $(AXE)/node_modules
