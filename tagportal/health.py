"""`GET /health/` for load balancers and monitoring (API.md "Limits and health"), on django-health-check.

No auth, no redirect (exempt from the HTTPS redirect), never cached. JSON:
`{"status": "ok" | "unavailable", "checks": {"database": {...}, "cache": {...}, "broker": {...},
"worker": {...}}}`. 200 when the database, the cache and the broker answer; 503 when one of them is
down. The worker heartbeat is in the body (`ok` or `stale`, with its age and queues): a web machine
stays in the load balancer while workers restart. `GET /health/workers/` is the worker fleet's own
probe: 503 when no worker has written a heartbeat within WORKER_HEARTBEAT_MAX_AGE.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings
from django.db import transaction
from django.http import JsonResponse
from django.utils.cache import add_never_cache_headers, patch_vary_headers
from django.utils.decorators import method_decorator
from django.views import View
from health_check.base import HealthCheck
from health_check.checks import Cache, Database
from health_check.exceptions import ServiceUnavailable, ServiceWarning
from health_check.views import HealthCheckView

from tagportal.celery import HEARTBEAT_KEY, app


def _redis_url() -> str:
    return str(app.conf.broker_url or "")


def _safe_url(url: str) -> str:
    """The URL without its password, for the body."""
    parts = urlsplit(url)
    if parts.password:
        netloc = f"{parts.username or ''}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
        parts = parts._replace(netloc=netloc)
    return urlunsplit(parts)


@dataclasses.dataclass
class Broker(HealthCheck):
    """The Celery broker (Redis) answers a PING. Without a broker tasks run inline: nothing to check."""

    def describe(self) -> dict:
        url = _redis_url()
        return {"url": _safe_url(url)} if url else {"mode": "eager (no broker: tasks run inline)"}

    def run(self):
        url = _redis_url()
        if not url:
            return
        import redis

        try:
            redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2).ping()
        except (redis.RedisError, OSError) as exc:
            raise ServiceUnavailable(f"broker unreachable ({type(exc).__name__})") from exc


def worker_heartbeats() -> list[dict]:
    """Every live worker's last heartbeat (tagportal.celery._Heartbeat), newest first."""
    import redis

    client = redis.Redis.from_url(_redis_url(), socket_timeout=2, socket_connect_timeout=2)
    beats = []
    for key in client.scan_iter(match=HEARTBEAT_KEY + "*", count=200):
        raw = client.get(key)
        if raw:
            try:
                beats.append(json.loads(raw))
            except ValueError:
                continue
    return sorted(beats, key=lambda b: -float(b.get("at", 0)))


@dataclasses.dataclass
class WorkerHeartbeat(HealthCheck):
    """A Celery worker has written its heartbeat within WORKER_HEARTBEAT_MAX_AGE seconds."""

    critical: bool = dataclasses.field(default=False, repr=False)

    def describe(self) -> dict:
        if not _redis_url():
            return {"mode": "eager (no broker: tasks run inline)"}
        try:
            beats = worker_heartbeats()
        except Exception:  # noqa: BLE001 - the broker check reports why
            return {"workers": []}
        now = time.time()
        workers = [{"node": b.get("node"), "queues": b.get("queues", []),
                    "age_seconds": round(now - float(b.get("at", 0)), 1)} for b in beats]
        out = {"workers": workers, "max_age_seconds": settings.WORKER_HEARTBEAT_MAX_AGE}
        if workers:
            out["last_seen_seconds_ago"] = workers[0]["age_seconds"]
            out["queues_served"] = sorted({q for w in workers for q in w["queues"]})
        return out

    def run(self):
        if not _redis_url():
            return
        import redis

        try:
            beats = worker_heartbeats()
        except (redis.RedisError, OSError) as exc:
            raise ServiceUnavailable("broker unreachable") from exc
        fresh = [b for b in beats if time.time() - float(b.get("at", 0)) <= settings.WORKER_HEARTBEAT_MAX_AGE]
        if not fresh:
            error = ServiceUnavailable if self.critical else ServiceWarning
            raise error(f"no worker seen in the last {settings.WORKER_HEARTBEAT_MAX_AGE} s")


class HealthView(HealthCheckView):
    """JSON always; 503 (not the package's 500) when a check it needs fails."""

    checks = (
        ("health_check.checks.Database", {}),
        ("health_check.checks.Cache", {}),
        ("tagportal.health.Broker", {}),
        ("tagportal.health.WorkerHeartbeat", {}),
    )
    names = {Database: "database", Cache: "cache", Broker: "broker", WorkerHeartbeat: "worker"}

    # A sync view (gunicorn's sync workers): the package's checks run concurrently on an event loop of
    # their own, in a helper thread, whatever the calling thread runs.
    @method_decorator(transaction.non_atomic_requests)
    def dispatch(self, request, *args, **kwargs):
        response = View.dispatch(self, request, *args, **kwargs)
        patch_vary_headers(response, ["Accept"])
        add_never_cache_headers(response)
        return response

    def get(self, request, *args, **kwargs):
        checks = list(self.get_checks())

        async def run_all():
            return await asyncio.gather(*(check.get_result(None) for check in checks))

        with ThreadPoolExecutor(max_workers=1) as pool:
            self.results = pool.submit(asyncio.run, run_all()).result()
        body = self.body()
        return JsonResponse(body, status=200 if body["status"] == "ok" else 503,
                            json_dumps_params={"ensure_ascii": False})

    def body(self) -> dict:
        checks, down = {}, False
        for result in self.results:
            check = result.check
            name = self.names.get(type(check), type(check).__name__)
            entry = {"status": "ok", "time_ms": round(result.time_taken * 1000, 1)}
            if result.error is not None:
                warning = isinstance(result.error, ServiceWarning)
                entry["status"] = "stale" if warning else "unavailable"
                entry["error"] = result.error.message
                down = down or not warning
            if hasattr(check, "describe"):
                entry.update(check.describe())
            checks[name] = entry
        return {"status": "unavailable" if down else "ok", "checks": checks}


class WorkerHealthView(HealthView):
    """The worker fleet: 503 when no worker has been seen recently."""

    checks = (
        ("health_check.checks.Database", {}),
        ("tagportal.health.Broker", {}),
        ("tagportal.health.WorkerHeartbeat", {"critical": True}),
    )
