"""Matching on a real Celery worker (Redis, separate process): ingest over HTTP, the worker matches
after the commit; a worker SIGKILLed mid-matching resumes when restarted, matching every message
exactly once."""

from __future__ import annotations

import time

import pytest
from django.db.models import Count

from customers.models import Customer, FollowRelation, TagEvent, Tagging, TagSource
from rules.models import PendingMessage, RuleHit

from .conftest import message, post_messages, price_rule

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def small_batches(monkeypatch):
    """The worker matches 20 messages per batch, so a few thousand take many batches."""
    monkeypatch.setenv("TAGPORTAL_MATCH_BATCH", "20")


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def many_customers(w, n: int) -> list[Customer]:
    Customer.objects.bulk_create([Customer(external_userid=f"wmbulk{i:06d}", name=f"客户{i}") for i in range(n)])
    customers = list(Customer.objects.filter(external_userid__startswith="wmbulk").order_by("pk"))
    FollowRelation.objects.bulk_create([FollowRelation(customer=c, employee=w.zhang) for c in customers])
    return customers


def test_ingest_over_http_is_matched_by_the_worker(small_batches, celery_worker, world):
    w = world
    price_rule(w)
    c = w.customers[0]
    post_messages(w, [message(c, "想了解一下价格", msgid="m1"), message(w.customers[1], "你好", msgid="m2")])
    wait_for(lambda: Tagging.objects.filter(customer=c, tag=w.price).exists(), 60, "the worker to tag")
    wait_for(lambda: not PendingMessage.objects.exists(), 30, "the queue to drain")
    assert list(RuleHit.objects.values_list("outcome", flat=True)) == ["tagged"]


def test_a_worker_killed_mid_matching_resumes_without_doubles_or_gaps(small_batches, celery_worker, world):
    w = world
    price_rule(w)
    customers = many_customers(w, 1500)
    items = []
    for i, c in enumerate(customers):
        items.append(message(c, "请问价格多少", msgid=f"p{i}", sent_at="2026-11-20T10:00:00+08:00"))
        items.append(message(c, "报价单收到了", msgid=f"q{i}", sent_at="2026-11-20T11:00:00+08:00"))
        items.append(message(c, "好的谢谢", msgid=f"r{i}", sent_at="2026-11-20T12:00:00+08:00"))
    post_messages(w, items)  # 4,500 messages, 3,000 of them with a keyword: ~225 batches of 20
    wait_for(lambda: RuleHit.objects.count() > 100, 180, "matching to be under way")
    celery_worker.kill()
    left = PendingMessage.objects.count()
    assert 0 < left < 4500, "killed mid-way"

    celery_worker.start()  # the restarted worker queues matching itself
    wait_for(lambda: not PendingMessage.objects.exists(), 400, "the queue to drain")
    hits = RuleHit.objects.all()
    assert hits.count() == 3000  # none skipped
    assert not hits.values("message_id").annotate(n=Count("id")).filter(n__gt=1).exists()  # none twice
    assert Tagging.objects.filter(tag=w.price).count() == 1500
    per_customer = TagEvent.objects.filter(source=TagSource.RULE).values("customer_id").annotate(n=Count("id"))
    assert per_customer.count() == 1500 and {row["n"] for row in per_customer} == {1}
    assert sorted(set(hits.values_list("outcome", flat=True))) == ["already", "tagged"]
