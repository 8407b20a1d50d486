"""The keyword rules' panels on the 数据看板: hits per day by outcome and customers tagged per rule,
for tag admins and enterprise admins only."""

from __future__ import annotations

import pytest

from tests.conftest import as_employee

from .conftest import message, post_messages, price_rule

pytestmark = pytest.mark.django_db(transaction=True)


def test_rule_panels_count_hits_per_day_and_tagged_customers(world):
    w = world
    price_rule(w)
    post_messages(w, [message(w.customers[0], "价格", msgid="m1", sent_at="2026-11-20T10:00:00+08:00"),
                      message(w.customers[1], "价格不需要了", msgid="m2", sent_at="2026-11-20T11:00:00+08:00"),
                      message(w.customers[2], "报价", msgid="m3", sent_at="2026-11-21T10:00:00+08:00")])
    body = w.api.get("/api/v1/insights/rule_hits_daily/?from=2026-11-20&to=2026-11-21").json()
    series = {s["key"]: s["data"] for s in body["series"]}
    assert series["tagged"] == [1, 1] and series["excluded"] == [1, 0]
    tagged_link = next(s for s in body["series"] if s["key"] == "tagged")["links"][0]
    assert "activity_source=rule" in tagged_link
    by_rule = w.api.get("/api/v1/insights/rule_tagged_by_rule/?from=2026-11-01&to=2026-11-30").json()
    assert by_rule["categories"] == ["价格关注"]
    assert {s["key"]: s["data"] for s in by_rule["series"]}["tagged"] == [2]


def test_staff_do_not_get_rule_panels(world):
    response = as_employee(world.zhang).get("/api/v1/insights/rule_hits_daily/")
    assert response.status_code == 404
