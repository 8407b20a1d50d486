"""`POST messages/`: idempotent by msgid, WeCom's archive shape, messages nobody follows."""

from __future__ import annotations

import pytest

from customers.models import FollowRelation, Message, RelationStatus, Tagging
from org.models import EmployeeStatus
from rules.models import RuleHit
from tests.factories import CustomerFactory

from .conftest import message, post_messages, price_rule

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_duplicate_msgid_is_stored_once_and_matched_once(world):
    w = world
    price_rule(w)
    c = w.customers[0]
    item = message(c, "价格多少", msgid="dup-1")
    assert post_messages(w, [item, item]) == {"created": 1, "duplicates": 1, "skipped": 0}
    assert post_messages(w, [item]) == {"created": 0, "duplicates": 1, "skipped": 0}
    assert Message.objects.filter(msgid="dup-1").count() == 1
    assert RuleHit.objects.count() == 1


def test_customer_id_may_replace_external_userid(world):
    w = world
    item = message(w.customers[0], "你好", msgid="m1")
    del item["external_userid"]
    item["customer"] = w.customers[0].pk
    assert post_messages(w, [item])["created"] == 1
    assert Message.objects.get().customer_id == w.customers[0].pk


def wecom(msgid, sender, tolist, text=None, *, action="send", msgtype="text", msgtime=1763604000000):
    item = {"msgid": msgid, "action": action, "from": sender, "tolist": tolist, "roomid": "", "msgtime": msgtime,
            "msgtype": msgtype}
    if text is not None:
        item["text"] = {"content": text}
    return item


def test_wecom_archive_shape_direction_from_the_external_side(world):
    w = world
    price_rule(w)
    c = w.customers[0]
    result = post_messages(w, [
        wecom("w1", c.external_userid, ["zhangwei"], "报价发我一下"),
        wecom("w2", "zhangwei", [c.external_userid], "价格表已发您"),
        wecom("w3", c.external_userid, ["zhangwei"], msgtype="image"),
        {"msgid": "w4", "action": "recall", "msgtime": 1763604000000},
    ])
    assert result == {"created": 3, "duplicates": 0, "skipped": 1}
    got = {m.msgid: (m.direction, m.content, m.employee.userid) for m in Message.objects.all()}
    assert got == {"w1": ("in", "报价发我一下", "zhangwei"), "w2": ("out", "价格表已发您", "zhangwei"),
                   "w3": ("in", "[image]", "zhangwei")}
    assert Message.objects.get(msgid="w1").sent_at.timestamp() == 1763604000
    assert list(RuleHit.objects.values_list("message__msgid", flat=True)) == ["w1"]
    assert Tagging.objects.filter(customer=c, tag=w.price).exists()


def test_wecom_item_without_an_external_side_is_400(world):
    response = world.api.post("/api/v1/messages/", {"messages": [wecom("w1", "zhangwei", ["wangfang"], "hi")]},
                              format="json")
    assert response.status_code == 400 and not Message.objects.exists()


def test_messages_of_unfollowed_customers_and_departed_employees_are_stored_and_matched(world):
    w = world
    price_rule(w)
    orphan = CustomerFactory(external_userid="wmorphan")
    lost = w.customers[1]
    FollowRelation.objects.filter(customer=lost).update(status=RelationStatus.LOST)
    w.zhang.status = EmployeeStatus.DEPARTED
    w.zhang.save()
    post_messages(w, [message(orphan, "价格", msgid="o1"), message(lost, "价格", msgid="l1")])
    assert Message.objects.count() == 2
    assert Tagging.objects.filter(tag=w.price).count() == 2


def test_a_message_queued_again_is_not_matched_twice(world):
    from rules.matching import messages_match_pending
    from rules.models import KeywordRule, PendingMessage

    w = world
    price_rule(w)
    post_messages(w, [message(w.customers[0], "价格多少", msgid="m1")])
    PendingMessage.objects.create(message_id=Message.objects.get(msgid="m1").pk)
    assert messages_match_pending() == 1
    assert RuleHit.objects.count() == 1 and KeywordRule.objects.get().hit_count == 1
