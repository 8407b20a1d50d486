"""In a real browser: a sales manager finds "VIP客户 and 高意向 but not 已成交" among their team's
customers, opens one, edits its tags and sees the change in its tag history."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from customers.models import Tagging
from tests.conftest import browser_login
from tests.customers.world import world_fixture  # noqa: F401
from tests.factories import CustomerFactory

pytestmark = pytest.mark.browser


@pytest.fixture
def team(transactional_db, world):
    w = world
    w.c_hot = CustomerFactory(name="热客户", followers=[w.staff])
    w.c_won = CustomerFactory(name="已成交客户", followers=[w.staff])
    w.c_plain = CustomerFactory(name="普通VIP", followers=[w.staff])
    w.c_other = CustomerFactory(name="一组热客户", followers=[w.team_staff])  # sub-department: out of reach
    for customer, tags in ((w.c_hot, (w.vip, w.hot)), (w.c_won, (w.vip, w.won)), (w.c_plain, (w.vip,)),
                           (w.c_other, (w.vip, w.hot))):
        for t in tags:
            Tagging.objects.create(customer=customer, tag=t)
    return w


def test_manager_filters_by_tags_and_edits_a_portrait(page, team):
    w = team
    browser_login(page, "boss")
    page.goto("/customers/customer/")
    expect(page.locator("#result_list")).to_contain_text("热客户")

    page.locator("summary", has_text="按标签筛选").click()
    picker = page.locator(".tp-tree")
    picker.get_by_role("button", name="VIP客户", exact=True).click()
    picker.get_by_role("button", name="高意向", exact=True).click()
    page.locator("label.tp-mode-none").click()
    picker.get_by_role("button", name="已成交", exact=True).click()
    page.get_by_role("button", name="筛选", exact=True).click()
    page.wait_for_load_state("networkidle")

    assert f"tags_all={w.vip.pk}%2C{w.hot.pk}" in page.url and f"tags_none={w.won.pk}" in page.url
    rows = page.locator("#result_list tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("热客户")
    expect(rows.first.locator(".tp-chip", has_text="VIP客户")).to_be_visible()
    expect(page.locator(".tp-count")).to_contain_text("共 1 位客户符合条件")

    rows.first.get_by_role("link", name=re.compile("热客户")).click()
    page.wait_for_load_state("networkidle")
    expect(page.locator("h1")).to_contain_text("热客户")
    locked = page.locator(".tp-taggroup[data-group='重点客户']")
    expect(locked).to_have_class(re.compile("tp-readonly"))
    expect(locked.locator("input").first).to_be_disabled()

    stage = page.locator(".tp-taggroup[data-group='转化阶段']")
    stage.locator("label", has_text="已成交").click()
    page.locator(".tp-taggroup[data-group='客户等级'] label", has_text="潜在客户").click()
    page.get_by_role("button", name="保存标签").click()
    page.wait_for_load_state("networkidle")

    expect(page.locator(".messagelist")).to_contain_text("标签已保存")
    expect(stage.locator(f"input[value='{w.won.pk}']")).to_be_checked()
    history = page.locator("#tag-history tbody")
    expect(history.locator("tr", has_text="已成交")).to_contain_text("添加")
    expect(history.locator("tr", has_text="高意向")).to_contain_text("移除")  # single-choice sibling, audited
    expect(history.locator("tr", has_text="潜在客户")).to_contain_text("经理")
    assert set(Tagging.objects.filter(customer=w.c_hot).values_list("tag__name", flat=True)) == {
        "VIP客户", "潜在客户", "已成交"}
