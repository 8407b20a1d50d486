"""The Celery app. Eager (inline) when no broker is configured, as in the embedded default.

Queues and routes, the beat schedule: settings.py ("serving, queues, abuse limits"). Here: the
scheduler beat runs with (it skips entries whose task no app registers yet) and the worker heartbeat
`/health/` reads (tagportal/health.py).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
import time

from celery import Celery
from celery.beat import PersistentScheduler
from celery.signals import worker_ready, worker_shutdown

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tagportal.settings")


class PortalCelery(Celery):
    """Celery, quiet in the embedded mode. Without a broker tasks run eagerly, yet `.delay()` still
    takes a producer from the connection pool (to learn its serializer); with no URL kombu builds that
    connection for amqp and logs "No hostname was supplied. Reverting to default 'localhost'" (`make
    seed` printed it). There the pool is kombu's in-memory transport instead: never opened, as the amqp
    one never was. `broker_url` itself stays empty, which is how /health/ knows the mode."""

    def connection_for_write(self, url=None, **kwargs):
        if url is None and not self.conf.broker_write_url and self.conf.task_always_eager:
            url = "memory://localhost"
        return super().connection_for_write(url, **kwargs)


app = PortalCelery("tagportal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

logger = logging.getLogger(__name__)
HEARTBEAT_KEY = "tagportal:worker-heartbeat:"


class PortalScheduler(PersistentScheduler):
    """Celery beat's file-backed scheduler, minus the entries whose task is not registered: an app
    that has not landed its task yet (or was removed) costs a warning, never a crash or a message
    no worker can run."""

    def setup_schedule(self):
        self.app.loader.import_default_modules()  # every app's tasks module, so the check is fair
        unknown = sorted(name for name, entry in self.app.conf.beat_schedule.items()
                         if entry["task"] not in self.app.tasks)
        for name in unknown:
            logger.warning("beat: skipping %r: task %r is not registered", name,
                           self.app.conf.beat_schedule[name]["task"])
        self.app.conf.beat_schedule = {k: v for k, v in self.app.conf.beat_schedule.items() if k not in unknown}
        super().setup_schedule()
        for name in unknown:  # also from a schedule file written by an earlier run
            self.schedule.pop(name, None)


# ---------------------------------------------------------------- worker heartbeat


class _Heartbeat(threading.Thread):
    """Writes `{"at", "queues", "pid"}` under `tagportal:worker-heartbeat:<node>` in the broker's
    Redis every WORKER_HEARTBEAT_SECONDS (expiring after WORKER_HEARTBEAT_MAX_AGE)."""

    def __init__(self, node: str, queues: list[str]):
        super().__init__(name="tagportal-heartbeat", daemon=True)
        from django.conf import settings

        self.node, self.queues = node, queues
        self.every = max(int(settings.WORKER_HEARTBEAT_SECONDS), 1)
        self.ttl = max(int(settings.WORKER_HEARTBEAT_MAX_AGE), self.every * 2)
        self.broker_url = app.conf.broker_url
        self.stopped = threading.Event()

    def beat_once(self, client) -> None:
        value = json.dumps({"at": time.time(), "queues": self.queues, "pid": os.getpid(), "node": self.node})
        client.set(HEARTBEAT_KEY + self.node, value, ex=self.ttl)

    def run(self) -> None:
        import redis

        client = redis.Redis.from_url(self.broker_url, socket_timeout=5)
        while True:
            try:
                self.beat_once(client)
            except Exception:  # noqa: BLE001 - keep beating once the broker is back
                logger.warning("worker heartbeat failed", exc_info=True)
            if self.stopped.wait(self.every):
                break
        with contextlib.suppress(Exception):
            client.delete(HEARTBEAT_KEY + self.node)  # a clean shutdown is not "seen recently"


_heartbeat: _Heartbeat | None = None


@worker_ready.connect
def _start_heartbeat(sender=None, **kwargs) -> None:
    global _heartbeat
    broker = str(app.conf.broker_url or "")
    if _heartbeat is not None or not broker.startswith(("redis://", "rediss://", "unix://")):
        return
    node = getattr(sender, "hostname", "") or socket.gethostname()
    try:
        queues = sorted(sender.app.amqp.queues.consume_from.keys())
    except Exception:  # noqa: BLE001
        queues = []
    _heartbeat = _Heartbeat(node, queues)
    _heartbeat.start()


@worker_shutdown.connect
def _stop_heartbeat(**kwargs) -> None:
    if _heartbeat is not None:
        _heartbeat.stopped.set()
        _heartbeat.join(5)
