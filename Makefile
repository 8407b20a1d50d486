# tagportal — `make demo` runs the portal with demo data; `make test` runs every test.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
HOST   ?= 127.0.0.1:8000

.PHONY: demo test test-sqlite worker serve venv lint bench clean

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

venv: $(VENV)/.installed

## Run the portal with demo data (SQLite + eager Celery unless DATABASE_URL/CELERY_BROKER_URL are set).
demo: venv
	$(PY) manage.py migrate --noinput
	$(PY) manage.py seed_demo
	$(PY) manage.py runserver $(HOST)

serve: venv
	$(PY) manage.py runserver $(HOST)

## Run the whole test suite: on PostgreSQL (127.0.0.1:5432) when reachable, else SQLite.
test: venv
	$(PY) scripts/run_tests.py $(ARGS)

## Run the whole test suite on SQLite, whatever is running.
test-sqlite: venv
	TAGPORTAL_TEST_DB=sqlite $(PY) scripts/run_tests.py $(ARGS)

## A Celery worker (needs CELERY_BROKER_URL, e.g. redis://127.0.0.1:6379/0, and DATABASE_URL).
worker: venv
	$(VENV)/bin/celery -A tagportal worker --loglevel=info --concurrency=2

lint: venv
	$(VENV)/bin/ruff check .

bench: venv
	$(PY) bench/run_all.py

clean:
	rm -rf $(VENV) db.sqlite3 staticfiles .pytest_cache
