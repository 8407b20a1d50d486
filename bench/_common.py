"""What the benchmarks share: a real `celery -A tagportal worker` subprocess to run their jobs.

    from _common import start_worker   # bench/ is on sys.path when a bench script runs
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


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
