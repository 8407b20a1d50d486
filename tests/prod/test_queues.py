"""Celery queues and beat: tasks routed by their `<app>.` prefix to `wecom`, `matching`, `bulk` or the
default `celery`; the worker harness and `make worker` consume all four; beat's schedule skips, never
sends, an entry whose task no app registers yet."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings

from tagportal.celery import PortalScheduler, app

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("task, queue", [
    ("wecom.process_event", "wecom"),
    ("wecom.push_outbox", "wecom"),
    ("rules.match_messages", "matching"),
    ("customers.tasks.job_run", "bulk"),
    ("customers.tasks.jobs_requeue_stale", "celery"),
    ("insights.refresh_aggregates", "celery"),
    ("org.tasks.department_tree_rebuild", "celery"),
])
def test_tasks_are_routed_to_their_queue_by_name(task, queue):
    route = app.amqp.router.route({}, task)
    assert route["queue"].name == queue


def test_every_queue_is_consumed_by_the_test_worker_make_worker_and_the_procfile():
    queues = set(settings.TAGPORTAL_CELERY_QUEUES)
    assert queues == {"celery", "wecom", "matching", "bulk"}
    assert "settings.TAGPORTAL_CELERY_QUEUES" in (ROOT / "tests" / "conftest.py").read_text()
    makefile = (ROOT / "Makefile").read_text().splitlines()
    make_worker = next(line for line in makefile if "celery -A tagportal worker" in line)
    assert set(make_worker.split("-Q ")[1].split()[0].split(",")) == queues
    procfile = dict(line.split(":", 1) for line in (ROOT / "Procfile").read_text().splitlines()
                    if line and not line.startswith("#"))
    assert {"web", "worker", "beat"} <= set(procfile)
    served = set()
    for command in procfile.values():
        if " worker " in command:
            served |= set(command.split("-Q ")[1].split()[0].split(","))
    assert served == queues
    assert "gunicorn tagportal.wsgi" in procfile["web"]


def test_beat_schedule_covers_the_periodic_work():
    app.loader.import_default_modules()  # every app's tasks, as beat and the worker load them
    tasks = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert {"customers.tasks.jobs_requeue_stale", "wecom.retry_events", "wecom.poll_transfers", "wecom.push_outbox",
            "insights.refresh_aggregates", "channels.refresh_receivers"} <= tasks
    assert all(name in app.tasks for name in tasks), sorted(tasks - set(app.tasks))  # every app has landed them


def test_beat_skips_entries_whose_task_is_not_registered(tmp_path):
    saved = dict(app.conf.beat_schedule)
    app.conf.beat_schedule = {
        **saved,
        "not-yet": {"task": "nosuchapp.not_written_yet", "schedule": 5.0},
    }
    try:
        scheduler = PortalScheduler(app, schedule_filename=str(tmp_path / "beat"), lazy=False)
        names = set(scheduler.schedule)
        assert "not-yet" not in names
        assert "customers.jobs_requeue_stale" in names  # registered: kept
        registered = {name for name, entry in saved.items() if entry["task"] in app.tasks}
        assert registered <= names
        scheduler.close()
    finally:
        app.conf.beat_schedule = saved


def test_a_task_run_eagerly_without_a_broker_logs_no_kombu_warning(db, caplog, monkeypatch):
    """`make seed` printed kombu's "No hostname was supplied. Reverting to default 'localhost'": without
    a broker tasks run eagerly (`.delay()` runs them inline), yet Celery still takes a producer from its
    connection pool first, and kombu, given no broker URL, builds that connection for amqp and warns."""
    import logging

    from kombu import pools

    from customers.tasks import jobs_requeue_stale

    monkeypatch.delenv("CELERY_BROKER_URL", raising=False)
    monkeypatch.setattr(app.conf, "broker_url", "")  # the embedded default: no broker, eager
    assert app.conf.task_always_eager

    def fresh_pools():  # as in a new process (`make seed`): no pooled connection yet
        pools.reset()
        app._pool = None
        app.amqp._producer_pool = None

    fresh_pools()
    try:
        with caplog.at_level(logging.WARNING, logger="kombu"):
            assert jobs_requeue_stale.delay().get() == []  # ran inline, as before
    finally:
        fresh_pools()
    assert [r.getMessage() for r in caplog.records if r.name.startswith("kombu")] == []
