"""Rule 15 gaps found in review: a message time Python cannot hold once read back as UTC was stored,
and then stopped keyword matching for every message queued with it."""

from __future__ import annotations

import pytest

from customers.models import Message, Tagging
from rules.models import PendingMessage

from .conftest import MESSAGES, RULES, message, post_messages, price_rule

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("sent_at", ["9999-12-31T23:59:59-10:00", "0001-01-01T00:00:00+10:00", "1900-01-01T00:00:00"])
def test_a_sent_at_out_of_range_is_400_and_matching_goes_on(world, sent_at):
    w = world
    price_rule(w)
    bad = message(w.customers[0], "价格多少", msgid="far", sent_at=sent_at)
    response = w.api.post(MESSAGES, {"messages": [bad]}, format="json")
    assert response.status_code == 400, response.content
    [detail] = response.json()["error"]["details"]
    assert "sent_at" in [e["field"] for e in detail["errors"]]
    assert not Message.objects.exists() and not PendingMessage.objects.exists()
    # the next customer's message is matched and tagged as usual
    post_messages(w, [message(w.customers[1], "报价发我", msgid="near")])
    assert Tagging.objects.filter(customer=w.customers[1], tag=w.price).exists()


def test_two_messages_of_one_customer_in_one_call_tag_once_and_log_already(world):
    """Once only holds inside one matching batch too: the second message is `already`, the tag is
    added (and audited) once, the rule page counts one tagged hit."""
    from customers.models import TagEvent
    from rules.models import RuleHit

    w = world
    rule = price_rule(w)
    c = w.customers[2]
    post_messages(w, [message(c, "价格多少", msgid="b1", sent_at="2026-11-20T10:00:00+08:00"),
                      message(c, "报价呢", msgid="b2", sent_at="2026-11-20T10:01:00+08:00")])
    assert [h.outcome for h in RuleHit.objects.filter(customer=c).order_by("sent_at")] == ["tagged", "already"]
    assert TagEvent.objects.filter(customer=c, tag=w.price).count() == 1
    figures = w.api.get(f"/api/v1/keyword-rules/{rule['id']}/").json()["figures"]
    assert figures["by_outcome"]["tagged"] == 1 and figures["tagged_customers"] == 1


def test_a_message_posted_without_direction_is_the_customers_own_and_counts(world):
    """`direction` defaults to `in` (API.md): a CRM that leaves it out still gets its customers tagged."""
    from customers.models import Direction

    w = world
    price_rule(w)
    c = w.customers[3]
    item = message(c, "价格多少", msgid="nodir")
    del item["direction"]
    post_messages(w, [item])
    assert Message.objects.get(msgid="nodir").direction == Direction.IN
    assert Tagging.objects.filter(customer=c, tag=w.price).exists()


def test_each_rule_counts_only_its_own_directions_when_another_rule_counts_outgoing(world):
    """Two rules, one for the customer's messages (default) and one for outgoing ones: an outgoing
    message with both keywords hits only the outgoing rule."""
    from rules.models import RuleHit

    w = world
    inbound = price_rule(w)
    outbound = price_rule(w, name="销售报价", keywords=["报价"], tags=[w.maintenance.pk], directions=["out"])
    c = w.customers[4]
    post_messages(w, [message(c, "给您的报价和价格表", msgid="out1", direction="out")])
    assert list(RuleHit.objects.values_list("rule_id", flat=True)) == [outbound["id"]]
    assert not RuleHit.objects.filter(rule_id=inbound["id"]).exists()
    assert not Tagging.objects.filter(customer=c, tag=w.price).exists()


def test_departments_cover_their_own_members_exactly_not_sub_departments(world):
    """A rule for 销售部 covers the customers of 销售部's members, not those of a sub-department's
    members (scope is exact, rule 3) nor of other departments."""
    from tests.factories import CustomerFactory, DepartmentFactory, EmployeeFactory

    w = world
    team = DepartmentFactory(name="销售一组", parent=w.sales)
    li = EmployeeFactory(userid="lixiao", name="李晓", roles=["staff"], departments=[team])
    team_customer = CustomerFactory(name="一组客户", external_userid="wmteam01", followers=[li])
    price_rule(w, departments=[w.sales.pk])
    post_messages(w, [message(w.customers[0], "价格", msgid="d1"),
                      message(w.other, "价格", msgid="d2", employee="wangfang"),
                      message(team_customer, "价格", msgid="d3", employee="lixiao")])
    tagged = set(Tagging.objects.filter(tag=w.price).values_list("customer_id", flat=True))
    assert tagged == {w.customers[0].pk}


def test_a_customer_who_left_the_covered_employee_is_no_longer_covered(world):
    """Covered employees cover the customers they follow now: a customer who deleted 王芳 (relation
    lost) and is still followed by 张伟 is not tagged by 王芳's rule."""
    from customers.models import FollowRelation
    from customers.services import follow_relation_end
    from org.actors import Actor

    w = world
    c = w.customers[0]
    FollowRelation.objects.create(customer=c, employee=w.wang)
    follow_relation_end(actor=Actor(label="企业微信"), customer=c, employee=w.wang, status="lost")
    price_rule(w, employees=["wangfang"])
    post_messages(w, [message(c, "价格多少", msgid="left1", employee="wangfang")])
    assert not Tagging.objects.filter(customer=c, tag=w.price).exists()


def test_excluded_messages_never_count_towards_min_hits(world):
    """min_hits counts the messages that would tag: "价格不需要" (an exclude keyword) earlier does not
    make the next price question the second hit."""
    w = world
    price_rule(w, min_hits=2)
    c = w.customers[1]
    post_messages(w, [message(c, "价格不需要了", msgid="x1", sent_at="2026-11-01T10:00:00+08:00")])
    post_messages(w, [message(c, "价格多少", msgid="x2", sent_at="2026-11-02T10:00:00+08:00")])
    assert not Tagging.objects.filter(customer=c, tag=w.price).exists()
    post_messages(w, [message(c, "报价呢", msgid="x3", sent_at="2026-11-03T10:00:00+08:00")])
    assert Tagging.objects.filter(customer=c, tag=w.price).exists()


def test_min_hits_counts_an_earlier_hit_just_inside_the_window_from_an_earlier_call(world):
    """window_days=7: a hit 6½ days before, matched in an earlier call, still counts."""
    w = world
    price_rule(w, min_hits=2, window_days=7)
    c = w.customers[2]
    post_messages(w, [message(c, "价格?", msgid="w1", sent_at="2026-11-01T10:00:00+08:00")])
    post_messages(w, [message(c, "报价呢", msgid="w2", sent_at="2026-11-07T22:00:00+08:00")])
    assert Tagging.objects.filter(customer=c, tag=w.price).exists()


def test_a_rule_with_two_tags_adds_the_one_missing_when_the_customer_holds_the_other(world):
    """`already` means holding every tag of the rule: holding one of two, the customer gets the other."""
    from rules.models import RuleHit

    w = world
    c = w.customers[3]
    Tagging.objects.create(customer=c, tag=w.price)
    price_rule(w, tags=[w.price.pk, w.maintenance.pk])
    post_messages(w, [message(c, "价格多少", msgid="two1")])
    assert set(Tagging.objects.filter(customer=c).values_list("tag_id", flat=True)) == {w.price.pk, w.maintenance.pk}
    assert RuleHit.objects.get(customer=c).outcome == "tagged"


def test_a_shadow_hit_in_testing_does_not_use_up_once_only_when_the_rule_goes_live(world):
    """Test mode tags nobody outside the samples: a customer logged `shadow` is tagged by the rule's
    first hit once it is live, and only real taggings count as tagged."""
    from rules.models import RuleHit

    w = world
    sample, other = w.customers[4], w.customers[5]
    rule = price_rule(w, status="testing", sample_customers=[sample.pk])
    post_messages(w, [message(other, "价格多少", msgid="s1", sent_at="2026-11-20T10:00:00+08:00")])
    assert w.api.get(f"{RULES}{rule['id']}/").json()["tagged_count"] == 0
    w.api.patch(f"{RULES}{rule['id']}/", {"status": "live"}, format="json")
    post_messages(w, [message(other, "报价呢", msgid="s2", sent_at="2026-11-21T10:00:00+08:00")])
    assert Tagging.objects.filter(customer=other, tag=w.price).exists()
    assert list(RuleHit.objects.filter(customer=other).order_by("sent_at").values_list("outcome", flat=True)) == [
        "shadow", "tagged"]
    assert w.api.get(f"{RULES}{rule['id']}/").json()["tagged_count"] == 1
