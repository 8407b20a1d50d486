"""Several processors at once on PostgreSQL (SKIP LOCKED): every event once, a customer's events in
order and never two of them at the same time, while different customers run side by side."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection

from wecom.events import _handlers, dedupe_key, event_handler, parse_event
from wecom.models import EventStatus, WeComEvent
from wecom.services import order_key, wecom_events_process

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]

RUNS: list[tuple[str, int, float, float, str]] = []
LOCK = threading.Lock()


@pytest.fixture
def slow_handler():
    @event_handler("tagportal_test_order")
    def record(event) -> None:
        started = time.monotonic()
        time.sleep(0.02)
        with LOCK:
            RUNS.append((event.order_key, event.pk, started, time.monotonic(), threading.current_thread().name))

    RUNS.clear()
    try:
        yield
    finally:
        _handlers.pop(("tagportal_test_order", None), None)


def test_parallel_processors_keep_order_per_customer(slow_handler):
    if connection.vendor != "postgresql":
        pytest.skip("SKIP LOCKED needs PostgreSQL")
    customers = [f"wmPAR{i}" for i in range(3)]
    rows = []  # stored as the callback stores them, without queueing (the threads below process)
    for external_userid in customers:  # each customer's events in a row: the next id is the same customer's
        for n in range(8):
            xml = (f"<xml><Event>tagportal_test_order</Event><ExternalUserID>{external_userid}</ExternalUserID>"
                   f"<Seq>{n}</Seq></xml>")
            fields = parse_event(xml)
            rows.append(WeComEvent(dedupe_key=dedupe_key(xml), event=fields["Event"], external_userid=external_userid,
                                   order_key=order_key(fields), payload=fields, raw=xml))
    WeComEvent.objects.bulk_create(rows)
    total = len(customers) * 8

    def work():
        try:
            while wecom_events_process(limit=1000):
                pass
        finally:
            connection.close()

    threads = [threading.Thread(target=work, name=f"processor-{i}") for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert WeComEvent.objects.filter(status=EventStatus.DONE).count() == total
    assert sorted(pk for _k, pk, *_ in RUNS) == sorted(WeComEvent.objects.values_list("pk", flat=True))  # once each
    by_key: dict[str, list[tuple[int, float, float]]] = {}
    for key, pk, started, ended, _thread in RUNS:
        by_key.setdefault(key, []).append((pk, started, ended))
    for key, runs in by_key.items():
        runs.sort(key=lambda r: r[1])
        assert [pk for pk, *_ in runs] == sorted(pk for pk, *_ in runs), f"{key} out of order"
        for (_a, _s1, end1), (_b, start2, _e2) in zip(runs, runs[1:], strict=False):
            assert start2 >= end1, f"two events of {key} ran at once"
    assert len({thread for *_, thread in RUNS}) > 1  # the work was really shared
