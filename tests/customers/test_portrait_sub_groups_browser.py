"""The portrait in a real browser: a top-level group with no tags of its own but tagged sub-groups
(行业 > 制造业 > 汽车) shows its name as a header row above its sub-groups, so they do not look
nested under the previous group."""

from __future__ import annotations

import os

import pytest
from playwright.sync_api import expect

from tests.conftest import browser_login
from tests.factories import CustomerFactory, EmployeeFactory, make_tag_group

pytestmark = pytest.mark.browser


def test_group_with_only_sub_groups_has_a_header_row(page, transactional_db, tmp_path):
    from django.apps import apps

    from org.roles import sync_role_permissions

    sync_role_permissions(apps)  # an earlier transactional test may have flushed the role permissions
    make_tag_group("客户等级", tags=["VIP客户", "潜在客户"])
    industry, _ = make_tag_group("行业")
    making, _ = make_tag_group("制造业", parent=industry)
    make_tag_group("汽车", parent=making, tags=["整车厂", "零部件"])
    staff = EmployeeFactory(userid="zhangsan", name="张三", roles=["staff"])
    customer = CustomerFactory(name="某汽车客户", followers=[staff])

    browser_login(page, "zhangsan")
    page.goto(f"/customers/customer/{customer.pk}/change/")
    header = page.locator('.tp-taggroup.tp-group-header[data-group="行业"]')
    expect(header).to_be_visible()
    expect(header.locator(".tp-group-name")).to_have_text("行业")
    rows = page.locator("#tags-form .tp-taggroup")
    names = [rows.nth(i).get_attribute("data-group") for i in range(rows.count())]
    assert names == ["客户等级", "行业", "制造业", "汽车"]
    # Drawn in that order, top to bottom, and the header is bold.
    tops = [page.locator(f'.tp-taggroup[data-group="{n}"]').bounding_box()["y"] for n in names]
    assert tops == sorted(tops)
    assert header.locator(".tp-group-name").evaluate("e => getComputedStyle(e).fontWeight") in ("600", "700", "bold")
    shot = os.environ.get("TP_SCREENSHOT") or str(tmp_path / "portrait.png")
    page.locator("#tags").screenshot(path=shot)
