"""The tag outbox against the WeCom stand-in over real HTTP: portal tag changes reach WeCom through
mark_tag on the right follow relation, coalesced per customer, retried, never echoed; ids assigned
before commit (a transaction committing late) are not skipped."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, transaction

from customers.models import TagEvent, TagSource
from customers.services import customer_tags_update, customers_tags_bulk_update
from customers.services.tagging import TagOperation
from org.actors import Actor
from tags import services as tag_services
from tests.wecom.sync_world import ADMIN, customer, employee, push, taxonomy, wecom_tags
from wecom import outbox
from wecom.mapping import WECOM_ACTOR
from wecom.models import OutboxItem


def ext(tag) -> str:
    tag.refresh_from_db()
    return tag.external_id


def marks(sim) -> list[dict]:
    return [c.body for c in sim.calls("externalcontact/mark_tag") if c.errcode == 0]


@pytest.fixture
def world(db, wecom_fake, settings):
    settings.WECOM_OUTBOX_RETRY_SECONDS = 0
    zhang, lina = employee(wecom_fake, "zhangwei"), employee(wecom_fake, "lina")
    t = taxonomy()
    push()
    wecom_fake.clear_calls()
    return {"sim": wecom_fake, "zhang": zhang, "lina": lina, **t}


def test_adds_go_to_the_acting_employees_relation_removals_to_every_relation(world):
    sim, zhang, lina = world["sim"], world["zhang"], world["lina"]
    c = customer(sim, "wmOUT1", zhang, lina)
    customer_tags_update(actor=Actor(employee=lina), customer=c, add=[world["vip"].pk], source=TagSource.MANUAL)
    push()
    assert marks(sim) == [{"userid": "lina", "external_userid": "wmOUT1", "add_tag": [ext(world["vip"])],
                           "remove_tag": []}]
    assert wecom_tags(sim, "wmOUT1", "lina") == {ext(world["vip"])}
    assert wecom_tags(sim, "wmOUT1", "zhangwei") == set()
    # enterprise level (no employee): the first active follower's relation
    customer_tags_update(actor=ADMIN, customer=c, add=[world["parts"].pk], source=TagSource.API)
    push()
    assert marks(sim)[-1]["userid"] == "zhangwei"
    # a removal is sent for every relation
    sim.clear_calls()
    customer_tags_update(actor=ADMIN, customer=c, remove=[world["vip"].pk], source=TagSource.API)
    push()
    assert sorted((m["userid"], tuple(m["remove_tag"])) for m in marks(sim)) == [
        ("lina", (ext(world["vip"]),)), ("zhangwei", (ext(world["vip"]),))]
    assert wecom_tags(sim, "wmOUT1", "lina") == set()


def test_changes_are_coalesced_per_customer_and_single_choice_removals_go_too(world):
    sim, zhang = world["sim"], world["zhang"]
    tag_services.tag_group_update(actor=ADMIN, group=world["level"], single_choice=True)
    c = customer(sim, "wmOUT2", zhang)
    customer_tags_update(actor=ADMIN, customer=c, add=[world["vip"].pk], source=TagSource.API)
    customer_tags_update(actor=ADMIN, customer=c, add=[world["normal"].pk], source=TagSource.API)  # removes VIP
    customer_tags_update(actor=ADMIN, customer=c, add=[world["parts"].pk], source=TagSource.API)
    push()
    calls = marks(sim)
    assert len(calls) == 1
    assert sorted(calls[0]["add_tag"]) == sorted([ext(world["normal"]), ext(world["parts"])])
    assert calls[0]["remove_tag"] == [ext(world["vip"])]
    assert wecom_tags(sim, "wmOUT2", "zhangwei") == {ext(world["normal"]), ext(world["parts"])}


def test_changes_from_wecom_are_not_echoed_and_tags_without_wecom_id_are_skipped(world, settings):
    sim, zhang = world["sim"], world["zhang"]
    c = customer(sim, "wmOUT3", zhang)
    customer_tags_update(actor=WECOM_ACTOR, customer=c, add=[world["vip"].pk], source=TagSource.WECOM)
    settings.WECOM_SECRET = ""  # not connected while the tag is made: it never gets a WeCom id
    local = tag_services.tag_create(actor=ADMIN, group=world["level"], name="本地标签")
    settings.WECOM_SECRET = sim.state.secret
    customer_tags_update(actor=ADMIN, customer=c, add=[local.pk], source=TagSource.API)
    push()
    assert marks(sim) == []
    assert OutboxItem.objects.get(customer=c).status == "done"


def test_failures_are_retried_and_nothing_is_lost(world):
    sim, zhang = world["sim"], world["zhang"]
    c = customer(sim, "wmOUT4", zhang)
    sim.fail("externalcontact/mark_tag", 60020, times=2)  # not retryable by the client: the outbox retries
    customer_tags_update(actor=ADMIN, customer=c, add=[world["vip"].pk], source=TagSource.API)
    push()
    item = OutboxItem.objects.get(customer=c)
    assert item.status == "done" and item.attempts == 3
    assert wecom_tags(sim, "wmOUT4", "zhangwei") == {ext(world["vip"])}
    # the retries re-read the contact first (a failed call may have gone through)
    assert sim.calls("externalcontact/get")


def test_an_item_left_sending_is_resumed_by_sending_only_what_is_missing(world):
    sim, zhang = world["sim"], world["zhang"]
    c = customer(sim, "wmOUT5", zhang)
    customer_tags_update(actor=ADMIN, customer=c, add=[world["vip"].pk, world["parts"].pk], source=TagSource.API)
    outbox.outbox_collect()
    # A worker claimed it, sent VIP, then died (same node, another boot)
    item = OutboxItem.objects.get(customer=c)
    api = __import__("wecom.taxonomy", fromlist=["client"]).client()
    api.post("externalcontact/mark_tag", {"userid": "zhangwei", "external_userid": "wmOUT5",
                                          "add_tag": [ext(world["vip"])]})
    OutboxItem.objects.filter(pk=item.pk).update(status="sending", claimed_by="node-a|dead", attempts=1)
    sim.clear_calls()
    result = outbox.outbox_push(node="node-a", boot="alive")
    assert result.resumed == 1
    assert marks(sim) == [{"userid": "zhangwei", "external_userid": "wmOUT5", "add_tag": [ext(world["parts"])],
                           "remove_tag": []}]


def test_the_next_item_of_a_customer_waits_for_the_one_being_sent(world):
    sim, zhang = world["sim"], world["zhang"]
    c = customer(sim, "wmOUT6", zhang)
    customer_tags_update(actor=ADMIN, customer=c, add=[world["vip"].pk], source=TagSource.API)
    outbox.outbox_collect()
    OutboxItem.objects.filter(customer=c).update(status="sending", claimed_by="other|live")
    customer_tags_update(actor=ADMIN, customer=c, remove=[world["vip"].pk], source=TagSource.API)
    outbox.outbox_collect()
    assert OutboxItem.objects.filter(customer=c).count() == 2  # the sending one is not changed
    assert outbox.outbox_push(node="node-b", boot="x").claimed == 0


def test_bulk_changes_reach_every_customer_once(world):
    sim, zhang = world["sim"], world["zhang"]
    customers = [customer(sim, f"wmBULK{i:03d}", zhang) for i in range(30)]
    customers_tags_bulk_update(actor=ADMIN, operations=[TagOperation(customer_id=c.pk, add=(world["vip"].pk,))
                                                        for c in customers], source=TagSource.BULK)
    push()
    assert sorted(m["external_userid"] for m in marks(sim)) == [f"wmBULK{i:03d}" for i in range(30)]


@pytest.mark.django_db(transaction=True)
def test_an_event_committed_after_a_later_one_is_not_skipped(wecom_fake, settings):
    """Ids come from a sequence before commit: the reader sees 104 while 103 is not committed."""
    if connection.vendor != "postgresql":
        pytest.skip("the snapshot horizon is PostgreSQL's; SQLite writers are serial")
    settings.WECOM_OUTBOX_RETRY_SECONDS = 0
    sim = wecom_fake
    zhang = employee(sim, "zhangwei")
    t = taxonomy()
    push()
    early, late = customer(sim, "wmGAP1", zhang), customer(sim, "wmGAP2", zhang)
    inserted, release = threading.Event(), threading.Event()

    def slow_transaction():
        try:
            with transaction.atomic():
                customer_tags_update(actor=ADMIN, customer=early, add=[t["vip"].pk], source=TagSource.API)
                inserted.set()
                release.wait(20)
        finally:
            connection.close()

    thread = threading.Thread(target=slow_transaction)
    thread.start()
    assert inserted.wait(20)
    customer_tags_update(actor=ADMIN, customer=late, add=[t["vip"].pk], source=TagSource.API)
    first = outbox.outbox_collect()
    assert first.gaps == 1  # the uncommitted event's id
    release.set()
    thread.join(20)
    import time

    time.sleep(outbox.GAP_SETTLE_SECONDS + 0.1)
    push()
    assert wecom_tags(sim, "wmGAP1", "zhangwei") == {ext(t["vip"])}
    assert wecom_tags(sim, "wmGAP2", "zhangwei") == {ext(t["vip"])}
    from wecom.models import OutboxCursor

    deadline = time.monotonic() + 20
    while OutboxCursor.objects.get(pk=1).gaps and time.monotonic() < deadline:
        time.sleep(outbox.GAP_SETTLE_SECONDS + 0.1)
        outbox.outbox_collect()
    # Settled once nothing can fill it any more; a gap still kept is one some transaction older than its
    # horizon could still fill (xids are server-wide: another database's long transaction holds it open).
    xmin = outbox._xid_bounds()[0]
    assert all(horizon is not None and xmin < horizon for *_ids, _seen, horizon in OutboxCursor.objects.get(pk=1).gaps)
    assert TagEvent.objects.count() == 2


def test_a_relation_wecom_does_not_have_is_skipped_not_retried(world):
    """A customer a CRM created in the portal only: WeCom answers 84061; nothing to retry."""
    from customers.models import Customer, FollowRelation

    c = Customer.objects.create(external_userid="wmCRMONLY", name="CRM")
    FollowRelation.objects.create(customer=c, employee=world["zhang"])
    customer_tags_update(actor=ADMIN, customer=c, add=[world["vip"].pk], source=TagSource.API)
    push()
    item = OutboxItem.objects.get(customer=c)
    assert item.status == "done" and item.attempts == 1
    assert item.sent[0]["skipped"]


def test_new_changes_never_join_an_older_item_waiting_for_its_retry(world):
    sim, zhang = world["sim"], world["zhang"]
    c = customer(sim, "wmORDER", zhang)
    customer_tags_update(actor=ADMIN, customer=c, add=[world["vip"].pk], source=TagSource.API)
    outbox.outbox_collect()
    first = OutboxItem.objects.get(customer=c)
    OutboxItem.objects.filter(pk=first.pk).update(status="sending")
    customer_tags_update(actor=ADMIN, customer=c, remove=[world["vip"].pk], source=TagSource.API)
    outbox.outbox_collect()
    second = OutboxItem.objects.exclude(pk=first.pk).get(customer=c)
    OutboxItem.objects.filter(pk=first.pk).update(status="pending", attempts=1)  # failed: waits for its retry
    customer_tags_update(actor=ADMIN, customer=c, add=[world["parts"].pk], source=TagSource.API)
    outbox.outbox_collect()
    first.refresh_from_db()
    second.refresh_from_db()
    assert set(first.changes) == {str(world["vip"].pk)}
    assert set(second.changes) == {str(world["vip"].pk), str(world["parts"].pk)}
    push()
    # the retried first item re-reads both sides: VIP was removed in the portal since, so it is not added
    assert wecom_tags(sim, "wmORDER", "zhangwei") == {ext(world["parts"])}
    assert not any(ext(world["vip"]) in (m["add_tag"] or []) for m in marks(sim))


def test_a_departed_followers_relation_is_never_marked(world):
    """zhangwei (the first follower) has left: his relation waits for 离职继承 and WeCom will not mark
    on his behalf. An add at enterprise level goes to lina, the first active follower; a removal only
    to her relation."""
    sim, zhang, lina = world["sim"], world["zhang"], world["lina"]
    c = customer(sim, "wmLEFT", zhang, lina)
    zhang.status = "departed"
    zhang.save()
    customer_tags_update(actor=ADMIN, customer=c, add=[world["vip"].pk], source=TagSource.API)
    push()
    customer_tags_update(actor=ADMIN, customer=c, remove=[world["vip"].pk], source=TagSource.API)
    push()
    assert [(m["userid"], m["add_tag"], m["remove_tag"]) for m in marks(sim)] == [
        ("lina", [ext(world["vip"])], []), ("lina", [], [ext(world["vip"])])]
    assert set(OutboxItem.objects.filter(customer=c).values_list("status", flat=True)) == {"done"}


def test_a_channel_codes_tags_go_to_the_relation_that_came_through_the_code(world):
    """A customer who already follows lina adds zhangwei through a code: the code's tag is marked on
    zhangwei's relation (the receiver's), not on lina's, the first follower's."""
    from channels.services import channel_code_create
    from customers.services import customer_upsert

    sim, lina = world["sim"], world["lina"]
    code = channel_code_create(actor=Actor(label="test"), data={
        "name": "车展", "state": "expo", "employees": ["zhangwei"], "tags": [world["vip"].pk]})
    customer(sim, "wmCODE", lina)
    sim.state.add_contact(userid="zhangwei", external_userid="wmCODE", name="wmCODE", state="expo",
                          welcome_code=False)
    sim.clear_calls()
    customer_upsert(actor=WECOM_ACTOR, data={"external_userid": "wmCODE", "followers": [
        {"employee": "zhangwei", "state": code.state}]})
    assert TagEvent.objects.get(customer__external_userid="wmCODE").source == TagSource.CHANNEL
    push()
    assert marks(sim) == [{"userid": "zhangwei", "external_userid": "wmCODE", "add_tag": [ext(world["vip"])],
                           "remove_tag": []}]
    assert wecom_tags(sim, "wmCODE", "lina") == set()
