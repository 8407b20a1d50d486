"""Shared fixtures: API callers, a real browser (Debian's chromium via Playwright) and a real
Celery worker on Redis. Later features reuse these harnesses."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client
from rest_framework.test import APIClient

from tests.factories import EmployeeFactory, make_api_client

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


# ---------------------------------------------------------------- API callers


@pytest.fixture
def api():
    """A DRF test client with no credentials."""
    return APIClient()


@pytest.fixture
def api_key(db):
    """A write-scope API client's key."""
    return make_api_client("crm")[1]


def bearer_client(key: str) -> APIClient:
    """An API test client that sends `Authorization: Bearer <key>`."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


@pytest.fixture
def key_api(api_key):
    """An API test client authenticated as an enterprise-level API client (write scope)."""
    return bearer_client(api_key)


@pytest.fixture
def read_only_api(db):
    return bearer_client(make_api_client("bi", read_only=True)[1])


def login(employee) -> Client:
    """A Django test client logged in as `employee`, for the admin (the portal)."""
    client = Client()
    client.force_login(employee)
    return client


def as_employee(employee) -> APIClient:
    """An API test client logged in with a browser session as `employee`."""
    client = APIClient()
    client.force_login(employee)
    return client


@pytest.fixture
def admin_user(db):
    return EmployeeFactory(userid="admin", name="管理员", roles=["enterprise_admin"], is_superuser=True)


# ---------------------------------------------------------------- real browser


@pytest.fixture(scope="session")
def _playwright():
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; Django's ORM (the test database
    # setup, the live server's data) refuses to run beside one unless told it is fine.
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="session")
def browser(_playwright):
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium)")
    browser = _playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@pytest.fixture
def page(browser, live_server):
    """A fresh browser page (Chinese locale) with `page.base_url` set to the live server."""
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    context = browser.new_context(locale="zh-CN", base_url=live_server.url, viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.base_url = live_server.url
    yield page
    context.close()


def browser_login(page, userid: str, password: str = "pass-1234") -> None:
    """Log in through the admin's own login form."""
    page.goto("/login/")
    page.fill("input[name=username]", userid)
    page.fill("input[name=password]", password)
    page.click("input[type=submit], button[type=submit]")
    page.wait_for_load_state("networkidle")


# ---------------------------------------------------------------- real Celery worker


def _worker_database_url() -> str:
    db = connection.settings_dict
    if db["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{db['NAME']}"
    user = db.get("USER") or "postgres"
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or 5432
    return f"postgres://{user}@{host}:{port}/{db['NAME']}"


class WorkerProcess:
    """A `celery worker` subprocess on the test database and a Redis broker; can be killed."""

    def __init__(self, broker_url: str):
        self.broker_url = broker_url
        self.proc: subprocess.Popen | None = None
        self.log_path = ROOT / f".pytest-worker-{os.getpid()}.log"

    def start(self) -> None:
        env = dict(os.environ)
        env.update(
            DATABASE_URL=_worker_database_url(),
            CELERY_BROKER_URL=self.broker_url,
            CELERY_TASK_ALWAYS_EAGER="false",
            DJANGO_SETTINGS_MODULE="tagportal.settings",
        )
        with open(self.log_path, "ab") as log:  # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "tagportal", "worker", "--pool=solo", "--concurrency=1",
                 "--without-gossip", "--without-mingle", "--loglevel=info", "-n", f"test-{os.getpid()}@%h",
                 "-Q", ",".join(settings.TAGPORTAL_CELERY_QUEUES)],  # every queue (settings: routes)
                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        self._wait_ready()

    def _wait_ready(self, timeout: float = 30) -> None:
        from tagportal.celery import app

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"celery worker exited early; see {self.log_path}")
            try:
                if app.control.ping(timeout=0.5):
                    return
            except Exception:  # noqa: BLE001 - broker not answering yet
                pass
            time.sleep(0.3)
        raise RuntimeError(f"celery worker not ready in {timeout}s; see {self.log_path}")

    def kill(self) -> None:
        """SIGKILL, as when a machine dies: no clean shutdown, no ack."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def celery_worker(transactional_db):
    """A real worker on Redis. Tasks sent during the test go through the broker to it.

    Data the test creates must be committed for the worker to see it, hence `transactional_db`.
    """
    import redis

    from tagportal.celery import app

    broker_url = os.environ.get("TAGPORTAL_REDIS_URL", "redis://127.0.0.1:6379/15")
    redis.Redis.from_url(broker_url).flushdb()
    saved_broker = app.conf.broker_url
    app.conf.update(broker_url=broker_url, task_always_eager=False)
    # An eager task run earlier in the session may have cached a connection pool for the empty
    # default broker (kombu's memory transport: tagportal.celery.PortalCelery); drop it (and the
    # producer pool built on it) so sends and pings go to this Redis.
    app._pool = None
    app.amqp._producer_pool = None
    settings.CELERY_TASK_ALWAYS_EAGER = False
    worker = WorkerProcess(broker_url)
    try:
        worker.start()  # inside try: a worker that never got ready is stopped too, not leaked
        yield worker
    finally:
        worker.stop()
        app.conf.update(broker_url=saved_broker, task_always_eager=True)
        settings.CELERY_TASK_ALWAYS_EAGER = True
        app.pool.force_close_all()
        # A closed kombu pool refuses every later acquire: drop it so the next worker test reconnects.
        from kombu import pools

        pools.reset()
        app._pool = None
        app.amqp._producer_pool = None


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Each test starts with an empty cache: API rate-limit counts never carry over (ids repeat on SQLite)."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture(autouse=True)
def _celery_eager_by_default(settings):
    """Outside `celery_worker`, tasks run inline, as in the embedded default."""
    from tagportal.celery import app

    if app.conf.task_always_eager is not True:
        app.conf.task_always_eager = True
    settings.CELERY_TASK_ALWAYS_EAGER = True
