"""Bad input answers 400/413 in the API's error shape, naming the field or item, and stores nothing."""

from __future__ import annotations

import pytest

from customers.models import Message
from rules.models import KeywordRule, PendingMessage

from .conftest import MESSAGES, RULES, message

pytestmark = pytest.mark.django_db


@pytest.fixture
def good(world):
    w = world
    return {"name": "价格关注", "keywords": ["价格"], "tags": [w.price.pk], "status": "live"}


@pytest.mark.parametrize("change, field", [
    ({"keywords": []}, "keywords"),
    ({"keywords": ["  "]}, "keywords"),
    ({"keywords": ["价" * 200]}, "keywords"),
    ({"exclude_keywords": ["x" * 51]}, "exclude_keywords"),
    ({"tags": [999999]}, "tags"),
    ({"tags": []}, "tags"),
    ({"exclude_tags": [999999]}, "exclude_tags"),
    ({"status": "running"}, "status"),
    ({"directions": ["sideways"]}, "directions"),
    ({"min_hits": 0}, "min_hits"),
    ({"window_days": -1}, "window_days"),
    ({"sample_customers": [999999]}, "sample_customers"),
    ({"employees": ["nobody"]}, "employees"),
    ({"name": ""}, "name"),
])
def test_bad_rule_is_400_naming_the_field_and_stores_nothing(world, good, change, field):
    response = world.api.post(RULES, {**good, **change}, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["details"]
    assert not KeywordRule.objects.exists()


def test_more_than_20_sample_customers_is_400(world, good):
    from tests.factories import CustomerFactory

    ids = [CustomerFactory().pk for _ in range(21)]
    response = world.api.post(RULES, {**good, "status": "testing", "sample_customers": ids}, format="json")
    assert response.status_code == 400 and "sample_customers" in response.json()["error"]["details"]
    assert not KeywordRule.objects.exists()


def test_two_tags_of_a_single_choice_group_is_400(world, good):
    response = world.api.post(RULES, {**good, "tags": [world.hot.pk, world.won.pk]}, format="json")
    assert response.status_code == 400 and "tags" in response.json()["error"]["details"]


def test_bad_update_changes_nothing(world, good):
    rule = world.api.post(RULES, good, format="json").json()
    response = world.api.patch(f"{RULES}{rule['id']}/", {"keywords": [], "name": "新名字"}, format="json")
    assert response.status_code == 400
    assert KeywordRule.objects.get().name == "价格关注"


def test_staff_and_read_only_keys_cannot_manage_rules(world, good):
    from tests.conftest import as_employee, bearer_client
    from tests.factories import make_api_client

    assert as_employee(world.zhang).post(RULES, good, format="json").status_code == 403
    assert as_employee(world.zhang).get(RULES).json()["results"] == []
    read_only = bearer_client(make_api_client("bi", read_only=True)[1])
    assert read_only.post(RULES, good, format="json").status_code == 403
    assert as_employee(world.tag_admin).post(RULES, good, format="json").status_code == 201


def test_a_message_for_an_unknown_customer_rejects_the_whole_call(world):
    w = world
    items = [message(w.customers[0], "价格", msgid="ok1"),
             {**message(w.customers[0], "价格", msgid="bad1"), "external_userid": "wmNOBODY"}]
    response = w.api.post(MESSAGES, {"messages": items}, format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_items"
    assert [(d["index"], d["msgid"]) for d in error["details"]] == [(1, "bad1")]
    assert not Message.objects.exists() and not PendingMessage.objects.exists()


@pytest.mark.parametrize("change, field", [
    ({"employee": "ghost"}, "employee"),
    ({"direction": "both"}, "direction"),
    ({"sent_at": "yesterday"}, "sent_at"),
    ({"content": None}, "content"),
    ({"msgid": ""}, "msgid"),
    ({"customer": 0}, "customer"),
])
def test_bad_message_items_are_named(world, change, field):
    item = {**message(world.customers[0], "价格", msgid="m1"), **change}
    response = world.api.post(MESSAGES, {"messages": [item]}, format="json")
    assert response.status_code == 400
    [detail] = response.json()["error"]["details"]
    assert field in [e["field"] for e in detail["errors"]]
    assert not Message.objects.exists()


def test_10001_messages_is_413_and_stores_nothing(world):
    c = world.customers[0]
    items = [message(c, "你好", msgid=f"m{i}") for i in range(10_001)]
    response = world.api.post(MESSAGES, {"messages": items}, format="json")
    assert response.status_code == 413 and response.json()["error"]["code"] == "too_large"
    assert not Message.objects.exists()


def test_staff_cannot_post_messages(world):
    from tests.conftest import as_employee

    response = as_employee(world.zhang).post(MESSAGES, {"messages": [message(world.customers[0], "x", msgid="m")]},
                                             format="json")
    assert response.status_code == 403 and not Message.objects.exists()
