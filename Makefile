# tagportal — `make demo` runs the portal with demo data; `make test` runs every test.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
HOST   ?= 127.0.0.1:8000
DEMO_CUSTOMERS ?= 2000
# Demo motion: jobs in an in-process worker thread (only when no CELERY_BROKER_URL is set), 25 customers a chunk.
DEMO_ENV ?= TAGPORTAL_JOBS_IN_THREAD=true TAGPORTAL_JOB_MAX_CHUNK=25

.PHONY: demo test test-sqlite worker serve seed migrate venv messages lint bench clean prod

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

## Create .venv and install the pinned requirements (again only when requirements.txt changes).
venv: $(VENV)/.installed

migrate: venv
	$(PY) manage.py migrate --noinput

## Demo data: a company with departments, employees of each role, tags, customers. Idempotent.
seed: migrate
	TAGPORTAL_URL=http://$(HOST) $(PY) manage.py seed_demo --customers $(DEMO_CUSTOMERS)

## Run the portal with demo data (SQLite + eager Celery unless DATABASE_URL/CELERY_BROKER_URL are set).
## Without a broker, jobs run in a thread of the web process in small chunks: the progress bar moves.
demo: seed
	@echo "Serving the portal on http://$(HOST)/ (Ctrl-C to stop)"
	DEBUG=true $(DEMO_ENV) $(PY) manage.py runserver $(HOST)

## The development server (DEBUG on; the secret key is generated once into .secret_key).
serve: venv
	DEBUG=true $(DEMO_ENV) $(PY) manage.py runserver $(HOST)

## Production serving on this machine: collectstatic + migrate, then gunicorn, the workers and beat
## (Procfile) under honcho. Needs DATABASE_URL, CELERY_BROKER_URL, SECRET_KEY and ALLOWED_HOSTS;
## set HTTPS=false to try it over plain HTTP (no TLS proxy in front). PORT defaults to 8000.
prod: venv
	@for v in DATABASE_URL CELERY_BROKER_URL SECRET_KEY ALLOWED_HOSTS; do \
	  printenv $$v >/dev/null || { echo "make prod: set $$v (see README, Deployment)"; exit 2; }; done
	$(PY) manage.py collectstatic --noinput -v 0
	$(PY) manage.py migrate --noinput
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/honcho start -f Procfile

## Run the whole test suite: on PostgreSQL (127.0.0.1:5432) when reachable, else SQLite. ARGS go to pytest.
test: venv
	$(PY) scripts/run_tests.py $(ARGS)

## Run the whole test suite on SQLite, whatever is running.
test-sqlite: venv
	TAGPORTAL_TEST_DB=sqlite $(PY) scripts/run_tests.py $(ARGS)

## A Celery worker (needs CELERY_BROKER_URL, e.g. redis://127.0.0.1:6379/0, and DATABASE_URL).
worker: venv
	@test -n "$$CELERY_BROKER_URL" || (echo "set CELERY_BROKER_URL (e.g. redis://127.0.0.1:6379/0)"; exit 2)
	$(VENV)/bin/celery -A tagportal worker --loglevel=info --concurrency=2 -Q celery,wecom,matching,bulk

## Refresh the English translation catalogue (msgids are Chinese) and compile it; needs gettext.
messages: venv
	$(PY) manage.py makemessages -l en --no-location --ignore=.venv --ignore=staticfiles --ignore=bench --ignore=tests
	$(PY) manage.py compilemessages -l en -l zh_Hans --ignore=.venv

lint: venv
	$(VENV)/bin/ruff check .

bench: venv
	$(PY) bench/run_all.py

clean:
	rm -rf $(VENV) db.sqlite3 staticfiles .pytest_cache
