"""The tag outbox on a real Celery worker, killed while pushing: after a restart every change reaches
WeCom once (the stand-in's call log), in order per customer; nothing lost, nothing doubled."""

from __future__ import annotations

import time
from collections import defaultdict

import pytest

from customers.models import TagSource
from customers.services import customers_tags_bulk_update
from customers.services.tagging import TagOperation
from tests.wecom.sync_world import ADMIN, customer, employee, push, taxonomy, wecom_tags
from wecom.models import OutboxItem, TaxonomyPush
from wecom.sync_tasks import push_outbox

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

N = 40


def wait_for(predicate, timeout: float = 60, step: float = 0.05, nudge: bool = False):
    """Wait until `predicate()`; `nudge`: queue a push every few seconds meanwhile, as celery beat
    does (a push that finds another one running returns at once)."""
    deadline = time.monotonic() + timeout
    last_nudge = time.monotonic()
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if nudge and time.monotonic() - last_nudge > 3:
            push_outbox.delay()
            last_nudge = time.monotonic()
        time.sleep(step)
    raise AssertionError("timed out waiting")


def test_killed_while_pushing_loses_and_doubles_nothing(wecom_fake, celery_worker):
    sim = wecom_fake
    zhang = employee(sim, "zhangwei")
    t = taxonomy()
    push()  # the corp tags exist in WeCom (here, or on the worker the taxonomy change queued)
    wait_for(lambda: not TaxonomyPush.objects.filter(status="pending").exists())
    vip, normal, parts = (t[k] for k in ("vip", "normal", "parts"))
    for tag in (vip, normal, parts):
        tag.refresh_from_db()
    customers = [customer(sim, f"wmK{i:03d}", zhang) for i in range(N)]
    sim.clear_calls()
    sim.latency = 0.05  # every WeCom call takes 50 ms: the worker is mid-push when killed

    customers_tags_bulk_update(actor=ADMIN, operations=[TagOperation(customer_id=c.pk, add=(vip.pk, parts.pk))
                                                        for c in customers], source=TagSource.BULK)
    push_outbox.delay()
    wait_for(lambda: len(sim.calls("externalcontact/mark_tag")) >= N // 3)
    celery_worker.kill()
    assert OutboxItem.objects.filter(status="sending").exists()  # killed mid-batch
    sent_before = len(sim.calls("externalcontact/mark_tag"))
    assert sent_before < N

    celery_worker.start()
    push_outbox.delay()
    wait_for(lambda: not OutboxItem.objects.exclude(status="done").exists()
             and OutboxItem.objects.count() == N, timeout=90, nudge=True)
    assert sim.calls("externalcontact/get")  # the in-flight ones were re-read, not blindly re-sent

    # Second round: VIP → 普通, 零部件 removed, for every customer
    customers_tags_bulk_update(actor=ADMIN, operations=[
        TagOperation(customer_id=c.pk, add=(normal.pk,), remove=(vip.pk, parts.pk)) for c in customers],
        source=TagSource.BULK)
    push_outbox.delay()
    wait_for(lambda: OutboxItem.objects.count() == 2 * N and not OutboxItem.objects.exclude(status="done").exists(),
             timeout=90, nudge=True)

    per_customer = defaultdict(list)
    for call in sim.calls("externalcontact/mark_tag"):
        assert call.errcode == 0
        per_customer[call.body["external_userid"]].append(call.body)
    for c in customers:
        calls = per_customer[c.external_userid]
        adds = [tag for body in calls for tag in body.get("add_tag") or []]
        removes = [tag for body in calls for tag in body.get("remove_tag") or []]
        # each change once
        assert sorted(adds) == sorted([vip.external_id, parts.external_id, normal.external_id]), c.external_userid
        assert sorted(removes) == sorted([vip.external_id, parts.external_id]), c.external_userid
        # in order: the first round's adds come before the second round's call
        assert set(calls[0]["add_tag"]) == {vip.external_id, parts.external_id}
        assert calls[-1]["add_tag"] == [normal.external_id]
        assert wecom_tags(sim, c.external_userid, "zhangwei") == {normal.external_id}
