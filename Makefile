# Two commands matter: `make run` and `make test` (see README.md). Everything else is a step of those.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export FLASK_APP := wsgi.py
CHROMIUM ?= /usr/bin/chromium

.PHONY: run test venv dev messages translations lint format coverage test-sqlite test-postgres browser-check bench fuzz clean

$(BIN)/activate:
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11 or newer is needed"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Re-install only when the requirements change.
$(VENV)/.runtime-installed: requirements.txt | $(BIN)/activate
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev-installed: requirements.txt requirements-dev.txt $(VENV)/.runtime-installed
	$(BIN)/pip install --quiet -r requirements.txt -r requirements-dev.txt
	touch $@

venv: $(VENV)/.runtime-installed
dev: $(VENV)/.dev-installed

# After changing user-facing text: extract the messages and merge them into the catalogues, then translate the
# new entries in nl and fr (tests/test_i18n.py fails while one is missing). templates/_macros is included:
# Babel skips folders starting with "_" unless told otherwise.
messages: dev
	$(BIN)/pybabel extract -F babel.cfg -k _l -k lazy_gettext --ignore-dirs '.*' -o app/translations/messages.pot .
	$(BIN)/pybabel update -i app/translations/messages.pot -d app/translations --no-fuzzy-matching

# Compiled message catalogues are build output (.mo is git-ignored).
translations: venv
	$(BIN)/pybabel compile -d app/translations -f --statistics

# Ports of `make run`: `make run PORT=5001 STRIPE_EMULATOR_PORT=8421` where 5000 or 8420 is taken. The links we
# hand out follow PORT (in development PUBLIC_BASE_URL defaults to http://127.0.0.1:$FLASK_RUN_PORT).
PORT ?= 5000
STRIPE_EMULATOR_PORT ?= 8420
# The periodic jobs run under `make run` too: a Celery worker and beat on an embedded broker (kombu's SQLAlchemy
# transport on a SQLite file of its own, so it never locks the app's database), or on the broker CELERY_BROKER_URL
# names (Redis); the web process queues its jobs there instead of running them inline. Token updates are pushed
# every RUN_TOKEN_PUSH_SECONDS (30 s in production) so a card blocked in the portal reaches the partners at once.
EMBEDDED_BROKER ?= sqla+sqlite:///$(CURDIR)/instance/celery-broker.sqlite3
BEAT_SCHEDULE_FILE ?= instance/celerybeat-schedule
RUN_TOKEN_PUSH_SECONDS ?= 5
CELERY_LOG_LEVEL ?= WARNING

# Without STRIPE_API_KEY the app talks to a local Stripe emulator (localstripe) started here and stopped with
# the server; with real Stripe test keys in the environment it talks to Stripe.
# The shared Dutch charge points (7,609 locations, 994 tariffs) fill the demo's map; the path is relative to the
# repository root (CI: /tmp/ciclone beside /tmp/shared). A missing folder is skipped with a message.
DEMO_CHARGE_POINTS ?= ../shared/data/ocpi-nl-10-cities
# The demo seed runs once the emulator is up (its invoices are paid through it) and before the worker starts, with
# its jobs inline (no broker): its invoice runs finish in the seed.

run: venv translations
	$(BIN)/flask db upgrade
	@children=""; trap 'kill $$children 2>/dev/null; wait' EXIT; trap 'exit 130' INT TERM; \
	if [ -z "$$CELERY_BROKER_URL" ]; then broker="the embedded broker ($(EMBEDDED_BROKER))"; \
	else broker="the broker of CELERY_BROKER_URL"; fi; \
	export FLASK_RUN_PORT=$(PORT) CELERY_BROKER_URL="$${CELERY_BROKER_URL:-$(EMBEDDED_BROKER)}"; \
	export CELERY_BEAT_INTERVALS="$${CELERY_BEAT_INTERVALS:-roaming-push-tokens=$(RUN_TOKEN_PUSH_SECONDS)}"; \
	if [ -z "$$STRIPE_API_KEY" ]; then \
	  export STRIPE_API_BASE=http://127.0.0.1:$(STRIPE_EMULATOR_PORT); \
	  $(BIN)/python app/payments/emulator.py $(STRIPE_EMULATOR_PORT) & children="$$children $$!"; \
	  echo "Stripe emulator (localstripe) on $$STRIPE_API_BASE"; \
	fi; \
	env -u CELERY_BROKER_URL $(BIN)/flask demo seed --charge-points $(DEMO_CHARGE_POINTS) || exit 1; \
	$(BIN)/celery --quiet -A app.worker worker --pool threads --concurrency 4 --loglevel $(CELERY_LOG_LEVEL) \
	  & children="$$children $$!"; \
	$(BIN)/celery --quiet -A app.worker beat --schedule $(BEAT_SCHEDULE_FILE) --loglevel $(CELERY_LOG_LEVEL) \
	  & children="$$children $$!"; \
	echo "Celery worker and beat on $$broker; beat intervals changed: $$CELERY_BEAT_INTERVALS"; \
	$(BIN)/flask run --host 127.0.0.1 --port $(PORT)

lint: dev
	$(BIN)/ruff check app tests bench wsgi.py
	$(BIN)/ruff format --check app tests bench wsgi.py
	$(BIN)/lint-imports
	$(BIN)/mypy

# Apply the house formatting (lint checks it).
format: dev
	$(BIN)/ruff format app tests bench wsgi.py
	$(BIN)/ruff check --fix app tests bench wsgi.py

# Line coverage of app/ over the whole suite (SQLite), printed as a table with the total on the last line.
coverage: dev translations browser-check
	TEST_DATABASE_URL= $(BIN)/coverage run -m pytest -q
	$(BIN)/coverage report --sort=cover

# The browser tests need Debian's chromium. Install it when missing and we may (root); otherwise stop with
# a clear message rather than skipping the browser tests silently.
browser-check:
	@if [ ! -x "$(CHROMIUM)" ]; then \
	  if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null; then \
	    echo "chromium missing: installing Debian's chromium with apt-get"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else \
	    echo "ERROR: $(CHROMIUM) not found. Install Debian's chromium (sudo apt-get install chromium) and re-run."; \
	    exit 1; \
	  fi; \
	fi
	@$(CHROMIUM) --version

test-sqlite: dev translations browser-check
	TEST_DATABASE_URL= $(BIN)/pytest -q

test-postgres: dev translations browser-check
	@if [ -z "$$TEST_DATABASE_URL" ]; then echo "TEST_DATABASE_URL not set: skipping the PostgreSQL run"; \
	else echo "PostgreSQL run on $$TEST_DATABASE_URL"; $(BIN)/pytest -q; fi

test: lint test-sqlite test-postgres

# The OCPI receivers and the API under hypothesis-generated hostile input with a larger budget than `make test`
# (tests/fuzz, 30 examples per receiver there); the cases run are counted at the end of the output.
fuzz: dev
	FUZZ_EXAMPLES=1000 $(BIN)/pytest tests/fuzz -q
	API_CONTRACT_EXAMPLES=200 $(BIN)/pytest tests/api/test_contract.py -q

# The figures go to bench/results.json, and the readable table in bench/README.md is rendered from them, also
# when a benchmark failed (its old figures stay, with their date).
bench: dev
	$(BIN)/python bench/run_all.py; status=$$?; $(BIN)/python bench/report.py; exit $$status

clean:
	rm -rf $(VENV) instance/test.sqlite3 .pytest_cache .ruff_cache
