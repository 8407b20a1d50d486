"""A small company for the keyword-rule tests: employees, a taxonomy with 关注价格 (open group) and
转化阶段 (single-choice: 高意向 / 已成交), customers followed by sales staff, and an API key."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from tests.conftest import bearer_client
from tests.factories import CustomerFactory, DepartmentFactory, EmployeeFactory, make_api_client, make_tag_group

RULES = "/api/v1/keyword-rules/"
MESSAGES = "/api/v1/messages/"


@pytest.fixture(name="world")
def world_fixture(db, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    w = SimpleNamespace()
    w.sales = DepartmentFactory(name="销售部")
    w.service_dept = DepartmentFactory(name="售后部")
    w.zhang = EmployeeFactory(userid="zhangwei", name="张伟", roles=["staff"], departments=[w.sales])
    w.wang = EmployeeFactory(userid="wangfang", name="王芳", roles=["staff"], departments=[w.service_dept])
    w.tag_admin = EmployeeFactory(userid="tagadmin", name="标签管理员", roles=["tag_admin"])
    w.interest, (w.price, w.maintenance) = make_tag_group("客户兴趣", tags=["关注价格", "关注保养"])
    w.stage, (w.hot, w.won) = make_tag_group("转化阶段", single_choice=True, tags=["高意向", "已成交"])
    w.locked_group, (w.key_account,) = make_tag_group("重点客户", locked=True, tags=["重点客户"])
    w.customers = [CustomerFactory(name=f"客户{i}", external_userid=f"wmcust{i:04d}", followers=[w.zhang])
                   for i in range(6)]
    w.other = CustomerFactory(name="售后客户", external_userid="wmservice01", followers=[w.wang])
    w.client, w.key = make_api_client("crm")
    w.api = bearer_client(w.key)
    return w


def message(customer, text, *, msgid, employee="zhangwei", direction="in", sent_at="2026-11-20T10:00:00+08:00"):
    return {"msgid": msgid, "external_userid": customer.external_userid, "employee": employee,
            "direction": direction, "content": text, "sent_at": sent_at}


def price_rule(w, **extra):
    body = {"name": "价格关注", "keywords": ["价格", "报价"], "tags": [w.price.pk], "exclude_tags": [w.won.pk],
            "exclude_keywords": ["不需要"], "status": "live", **extra}
    response = w.api.post(RULES, body, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def post_messages(w, items):
    response = w.api.post(MESSAGES, {"messages": items}, format="json")
    assert response.status_code == 200, response.content
    return response.json()
