"""Back-test (what a rule would have done on stored history; changes nothing; its result becomes an
undoable bulk job) and undo (remove the rule's tags, sparing tags others added since)."""

from __future__ import annotations

import pytest

from customers.models import Job, JobKind, TagEvent, Tagging
from rules.models import KeywordRule, RuleHit

from .conftest import RULES, message, post_messages, price_rule

pytestmark = pytest.mark.django_db(transaction=True)


def history(w):
    """Stored chat before the rule existed: 3 customers asked for prices, one said 不需要, one is 已成交."""
    c = w.customers
    Tagging.objects.create(customer=c[3], tag=w.won)
    post_messages(w, [
        message(c[0], "想了解一下价格", msgid="h1", sent_at="2026-11-02T10:00:00+08:00"),
        message(c[0], "报价单发我", msgid="h2", sent_at="2026-11-03T10:00:00+08:00"),
        message(c[1], "价格能优惠吗", msgid="h3", sent_at="2026-11-04T10:00:00+08:00"),
        message(c[2], "价格不需要了", msgid="h4", sent_at="2026-11-05T10:00:00+08:00"),
        message(c[3], "续费价格", msgid="h5", sent_at="2026-11-06T10:00:00+08:00"),
        message(c[4], "价格", msgid="h6", sent_at="2026-10-01T10:00:00+08:00"),  # before the range
        message(c[5], "价格", msgid="h7", sent_at="2026-11-07T10:00:00+08:00", direction="out"),
    ])


def test_backtest_reports_what_would_match_and_changes_nothing(world):
    w = world
    history(w)
    rule = price_rule(w, status="draft")
    before = (Tagging.objects.count(), TagEvent.objects.count(), RuleHit.objects.count())
    response = w.api.post(f"{RULES}{rule['id']}/backtest/", {"since": "2026-11-01", "until": "2026-11-30"},
                          format="json")
    assert response.status_code == 202
    job = w.api.get(f"/api/v1/jobs/{response.json()['job']}/").json()
    assert job["status"] == "succeeded" and job["kind"] == "rule_backtest"
    result = job["result"]
    assert (result["customers"], result["messages"]) == (2, 3)
    assert result["excluded_messages"] == 1 and result["excluded_customers"] == 1
    assert {k["keyword"]: k["messages"] for k in result["keywords"]} == {"价格": 2, "报价": 1}
    sample = next(s for s in result["sample"] if s["msgid"] == "h2")
    assert sample["keyword"] == "报价" and sample["content"][slice(*sample["spans"][0])] == "报价"
    assert (Tagging.objects.count(), TagEvent.objects.count(), RuleHit.objects.count()) == before

    applied = w.api.post(f"{RULES}{rule['id']}/backtest/apply/", {"job": job["id"]}, format="json")
    assert applied.status_code == 202
    bulk = Job.objects.get(pk=applied.json()["job"])
    assert bulk.kind == JobKind.BULK_TAGGING and bulk.status == "succeeded"
    tagged = set(Tagging.objects.filter(tag=w.price).values_list("customer_id", flat=True))
    assert tagged == {w.customers[0].pk, w.customers[1].pk}
    undo = w.api.post(f"/api/v1/jobs/{bulk.pk}/undo/").json()
    assert Job.objects.get(pk=undo["job"]).status == "succeeded"
    assert not Tagging.objects.filter(tag=w.price).exists()


def test_backtest_with_a_bad_range_is_400(world):
    rule = price_rule(world)
    response = world.api.post(f"{RULES}{rule['id']}/backtest/", {"since": "2026-12-01", "until": "2026-11-01"},
                              format="json")
    assert response.status_code == 400 and "until" in response.json()["error"]["details"]
    assert not Job.objects.exists()


def test_undo_removes_the_rules_tags_but_spares_those_others_added_since(world):
    w = world
    rule = price_rule(w)
    a, b, c = w.customers[:3]
    Tagging.objects.create(customer=c, tag=w.maintenance)
    post_messages(w, [message(x, "价格多少", msgid=f"m{i}") for i, x in enumerate([a, b, c])])
    assert Tagging.objects.filter(tag=w.price).count() == 3
    # Someone removes 关注价格 from b, then adds it again by hand: it is theirs now.
    w.api.post(f"/api/v1/customers/{b.pk}/tags/", {"remove": [w.price.pk]}, format="json")
    w.api.post(f"/api/v1/customers/{b.pk}/tags/", {"add": [w.price.pk]}, format="json")

    response = w.api.post(f"{RULES}{rule['id']}/undo/", {}, format="json")
    assert response.status_code == 202
    job = Job.objects.get(pk=response.json()["job"])
    assert job.kind == JobKind.RULE_UNDO and job.status == "succeeded"
    assert job.counts == {"removed": 2, "kept": 1}
    assert set(Tagging.objects.filter(tag=w.price).values_list("customer_id", flat=True)) == {b.pk}
    assert Tagging.objects.filter(customer=c, tag=w.maintenance).exists()
    # Once only: the rule does not tag a or c again.
    post_messages(w, [message(a, "报价呢", msgid="again")])
    assert not Tagging.objects.filter(customer=a, tag=w.price).exists()


def test_undo_since_a_date_spares_earlier_taggings(world):
    w = world
    rule = price_rule(w)
    post_messages(w, [message(w.customers[0], "价格", msgid="m1")])
    KeywordRule.objects.filter(pk=rule["id"]).get().tagged.update(tagged_at="2026-01-01T00:00:00+08:00")
    TagEvent.objects.update(created_at="2026-01-01T00:00:00+08:00")
    response = w.api.post(f"{RULES}{rule['id']}/undo/", {"since": "2026-06-01"}, format="json")
    assert Job.objects.get(pk=response.json()["job"]).status == "succeeded"
    assert Tagging.objects.filter(tag=w.price).count() == 1


def test_a_tag_admin_undoes_a_rule_whose_tag_is_in_a_group_they_cannot_see(world):
    """The rule tagged as automation; its undo removes the tags even when the person who asks for it
    cannot see the tag's group (scoped to another department), and records that person as the job's actor."""
    from org.actors import Actor
    from rules.services import rule_undo_start
    from tests.factories import make_tag_group

    w = world
    _group, (maintenance_due,) = make_tag_group("售后服务", tags=["保养到期"], departments=[w.service_dept])
    rule = price_rule(w, name="保养提醒", keywords=["保养"], tags=[maintenance_due.pk], exclude_tags=[])
    post_messages(w, [message(w.customers[0], "车子该保养了", msgid="u1")])
    assert Tagging.objects.filter(customer=w.customers[0], tag=maintenance_due).exists()

    job = rule_undo_start(actor=Actor(employee=w.tag_admin), rule=KeywordRule.objects.get(pk=rule["id"]))
    job.refresh_from_db()
    assert job.status == "succeeded", job.errors
    assert job.counts["removed"] == 1 and job.actor_employee == w.tag_admin
    assert not Tagging.objects.filter(customer=w.customers[0], tag=maintenance_due).exists()
    assert Job.objects.filter(kind="rule_undo").count() == 1
