"""What the benchmarks share: copies of the 1M database, Django on a benchmark database with the
production settings on loopback, the load average, and a real `celery -A tagportal worker` subprocess.

    from _common import copy_database, load, setup_django, start_worker   # bench/ is on sys.path
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PG = "postgres://postgres@127.0.0.1:5432"


def run(cmd: list[str], **kwargs) -> None:
    print("$", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, **kwargs)


def load_average() -> float:
    return os.getloadavg()[0]


def load() -> str:
    """The machine's load average (1 min), for printing beside a figure."""
    return f"load {load_average():.2f}"


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_http(url: str, timeout: float = 60) -> None:
    """Wait until a server answers `url` (any HTTP status, e.g. 401, counts as an answer)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"server at {url} did not answer in {timeout}s")


def copy_database(db: str, template: str) -> None:
    """(Re)create `db` as a copy of `template` (`createdb -T`), retrying while someone is connected to it."""
    run(["dropdb", "-h", "127.0.0.1", "-U", "postgres", "--if-exists", "--force", db])
    started = time.monotonic()
    for attempt in range(20):  # nobody may be connected to the template while it is copied
        done = subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", "-T", template, db],
                              capture_output=True, text=True)
        if done.returncode == 0:
            break
        print(f"  createdb: {done.stderr.strip()} (retry {attempt + 1})", flush=True)
        time.sleep(3)
    else:
        raise RuntimeError(f"could not copy {template}")
    print(f"  copied {template} → {db} in {time.monotonic() - started:.1f} s", flush=True)


def setup_django(db: str, redis_url: str | None = None) -> dict:
    """Django on `db` with the production settings on loopback (DEBUG off, no TLS in front, a throwaway
    key, static files from the app folders rather than a collected manifest) and, given `redis_url`,
    a real broker; returns the environment for subprocesses."""
    env = dict(os.environ)
    env.update(DATABASE_URL=f"{PG}/{db}", DJANGO_SETTINGS_MODULE="tagportal.settings", DEBUG="false",
               LOG_LEVEL="WARNING", HTTPS="false", ALLOWED_HOSTS="127.0.0.1,localhost,testserver",
               SECRET_KEY=env.get("SECRET_KEY") or secrets.token_urlsafe(50))
    env.setdefault("STATIC_MANIFEST", "false")  # pages render without a collectstatic run first
    if redis_url:
        env.update(CELERY_BROKER_URL=redis_url, CELERY_TASK_ALWAYS_EAGER="false")
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    return env


def start_worker(
    env: dict, *, name: str, log: Path, timeout: float = 60, queues: str | None = None
) -> subprocess.Popen:
    """Start a solo-pool worker with `env` (its DATABASE_URL and CELERY_BROKER_URL) and wait until it
    answers a ping. Output goes to `log`; raises RuntimeError if it exits or isn't ready in `timeout` s.
    `queues` (comma-separated) for `-Q`, else the default queue. Django must be set up (the ping goes
    through `tagportal.celery.app`)."""
    from tagportal.celery import app

    with open(log, "wb") as out:  # the child keeps its own copy of the fd
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "tagportal", "worker", "--pool=solo", "--concurrency=1",
             "--without-gossip", "--without-mingle", "--loglevel=warning", "-n", f"{name}-{os.getpid()}@%h",
             *(["-Q", queues] if queues else [])],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            raise RuntimeError(f"worker exited; see {log.name}")
        try:
            if app.control.ping(timeout=0.5):
                return worker
        except Exception:  # noqa: BLE001 - broker not answering yet
            pass
        time.sleep(0.3)
    worker.kill()
    raise RuntimeError(f"worker not ready in {timeout:.0f} s")
