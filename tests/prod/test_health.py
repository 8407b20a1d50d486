"""`GET /health/` (API.md "Limits and health"): no auth, no redirect; 200 with the database, cache,
broker and the last worker heartbeat in the body; 503 when something it needs is down."""

from __future__ import annotations

import time

import pytest
from django.test import Client, override_settings

from tagportal.celery import app


def test_health_answers_200_without_credentials_and_lists_every_check(db):
    response = Client().get("/health/")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "cache", "broker", "worker"}
    assert all(check["status"] == "ok" for check in body["checks"].values())
    assert "no-store" in response["Cache-Control"]


@override_settings(SECURE_SSL_REDIRECT=True)
def test_health_is_not_redirected_to_https_while_pages_are(db):
    client = Client()
    assert client.get("/login/").status_code == 301  # HTTPS redirect for people
    assert client.get("/health/").status_code == 200  # load balancers probe plain HTTP


def test_health_is_503_when_the_broker_is_down(db):
    saved = app.conf.broker_url
    app.conf.broker_url = "redis://127.0.0.1:1/0"  # nothing listens there
    try:
        response = Client().get("/health/")
    finally:
        app.conf.broker_url = saved
    assert response.status_code == 503, response.content
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["broker"]["status"] == "unavailable"
    assert body["checks"]["database"]["status"] == "ok"


def test_health_is_503_when_the_cache_is_down(db, settings):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                   "LOCATION": "redis://127.0.0.1:1/0"}}  # Django rebuilds the caches
    response = Client().get("/health/")
    assert response.status_code == 503, response.content
    assert response.json()["checks"]["cache"]["status"] == "unavailable"


@pytest.mark.worker
def test_worker_heartbeat_shows_every_queue_and_goes_stale_when_the_worker_stops(celery_worker, settings):
    deadline = time.monotonic() + 15
    while True:
        body = Client().get("/health/").json()
        if body["checks"]["worker"].get("workers") or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    worker = body["checks"]["worker"]
    assert worker["status"] == "ok", body
    assert worker["queues_served"] == ["bulk", "celery", "matching", "wecom"]
    assert worker["last_seen_seconds_ago"] < settings.WORKER_HEARTBEAT_MAX_AGE
    assert Client().get("/health/workers/").status_code == 200

    celery_worker.stop()
    response = Client().get("/health/")
    assert response.status_code == 200  # the web machine still serves: workers are reported, not required
    assert response.json()["checks"]["worker"]["status"] == "stale"
    workers = Client().get("/health/workers/")
    assert workers.status_code == 503 and workers.json()["checks"]["worker"]["status"] == "unavailable"


def test_worker_check_is_ok_in_eager_mode_without_a_broker(db):
    saved = app.conf.broker_url
    app.conf.broker_url = ""
    try:
        body = Client().get("/health/").json()
    finally:
        app.conf.broker_url = saved
    assert body["checks"]["worker"]["status"] == "ok" and "eager" in body["checks"]["worker"]["mode"]
