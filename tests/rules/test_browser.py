"""In a real browser: a tag admin writes a rule with keyword chips and the tag tree, tries a message in
试一试 (live, as they type), saves, and reads the rule page; at 390 px nothing scrolls sideways."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from rules.models import KeywordRule
from tests.conftest import browser_login

from .conftest import message, post_messages, price_rule

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def no_sideways_scroll(page) -> None:
    scroll, client = page.evaluate("() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    assert scroll <= client, f"{page.url} scrolls sideways ({scroll} > {client})"


@pytest.fixture
def admin_world(world):
    from django.apps import apps

    from org.roles import sync_role_permissions

    sync_role_permissions(apps)
    return world


def test_write_a_rule_with_chips_and_try_it_live(page, admin_world):
    w = admin_world
    price_rule(w, name="已有规则", keywords=["保养"], tags=[w.maintenance.pk], exclude_tags=[], exclude_keywords=[])
    browser_login(page, "tagadmin")
    page.goto("/")
    page.get_by_role("link", name="智能标签").first.click()
    page.get_by_role("link", name="新建智能标签").click()
    page.fill("#id_name", "价格关注")
    page.fill("#tp-kw-input", "价格")
    page.press("#tp-kw-input", "Enter")
    page.fill("#tp-kw-input", "报价")
    page.press("#tp-kw-input", "Enter")
    expect(page.locator("#tp-keywords .tp-kw")).to_have_count(2)
    page.locator("#tp-tags-tree label.tp-pick", has_text="关注价格").click()

    page.fill("#tp-try-text", "车子该保养了，报价多少")
    expect(page.locator("#tp-try-result li")).to_have_count(2)
    expect(page.locator("#tp-try-result li").first).to_contain_text("价格关注")
    expect(page.locator("#tp-try-result li").first.locator("mark")).to_have_text("报价")
    expect(page.locator("#tp-try-result li[data-rule]").nth(1)).to_contain_text("已有规则")

    page.locator("#id_status").select_option("live")
    page.click("#tp-rule-save")
    expect(page.locator(".tp-rule-page")).to_be_visible()
    rule = KeywordRule.objects.get(name="价格关注")
    assert rule.keywords == ["价格", "报价"] and list(rule.tags.values_list("name", flat=True)) == ["关注价格"]

    # Editing the saved rule: 试一试 shows it once, as edited (its old keyword 价格 no longer counts).
    page.goto(f"/rules/keywordrule/{rule.pk}/edit/")
    page.locator("#tp-keywords .tp-kw", has_text="价格").first.locator("button").click()
    page.fill("#tp-try-text", "价格贵不贵")
    expect(page.locator("#tp-try-result li")).to_have_count(1)
    expect(page.locator("#tp-try-result li")).to_have_class("tp-muted")
    page.fill("#tp-try-text", "报价多少")
    expect(page.locator("#tp-try-result li")).to_have_count(1)
    expect(page.locator("#tp-try-result li")).to_have_attribute("data-rule", str(rule.pk))
    expect(page.locator("#tp-try-result li")).to_contain_text("正在编辑")


def test_rule_pages_fit_a_phone(browser, live_server, admin_world):
    w = admin_world
    rule = price_rule(w, status="testing", sample_customers=[w.customers[0].pk])
    post_messages(w, [message(c, "你好，想了解一下价格和报价，价格表发一下" * 2, msgid=f"m{i}")
                      for i, c in enumerate(w.customers)])
    job = w.api.post(f"/api/v1/keyword-rules/{rule['id']}/backtest/", {"since": "2026-11-01", "until": "2026-11-30"},
                     format="json").json()["job"]
    context = browser.new_context(locale="zh-CN", base_url=live_server.url, viewport={"width": 390, "height": 844})
    page = context.new_page()
    try:
        browser_login(page, "tagadmin")
        for url in ("/rules/keywordrule/", f"/rules/keywordrule/{rule['id']}/change/",
                    f"/rules/keywordrule/{rule['id']}/edit/", "/rules/keywordrule/add/",
                    f"/rules/keywordrule/backtest/{job}/", f"/customers/job/{job}/change/"):
            page.goto(url)
            page.wait_for_load_state("networkidle")
            no_sideways_scroll(page)
        page.goto(f"/rules/keywordrule/{rule['id']}/change/")
        expect(page.locator("#tp-testing-summary")).to_contain_text("将为 5 位客户打标签")
        expect(page.locator("#tp-rule-hits-per-day canvas, #tp-rule-hits-per-day svg").first).to_be_visible()
    finally:
        context.close()


def test_sample_customers_show_and_can_be_picked_in_the_editor(page, admin_world):
    """The editor shows a testing rule's sample customers as chips; a customer found by name joins them."""
    w = admin_world
    rule = price_rule(w, status="testing", sample_customers=[w.customers[0].pk])
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    browser_login(page, "tagadmin")
    page.goto(f"/rules/keywordrule/{rule['id']}/edit/")
    expect(page.locator("#tp-sample-chips .tp-chip")).to_have_count(1)
    expect(page.locator("#tp-sample-chips")).to_contain_text(w.customers[0].name)
    page.fill("#tp-sample-q", w.customers[1].name)
    page.locator("#tp-sample-results button", has_text=w.customers[1].external_userid).click()
    expect(page.locator("#tp-sample-chips .tp-chip")).to_have_count(2)
    page.click("#tp-rule-save")
    expect(page.locator(".tp-rule-page")).to_be_visible()
    assert errors == []
    assert set(KeywordRule.objects.get(pk=rule["id"]).sample_customers.values_list("pk", flat=True)) == {
        w.customers[0].pk, w.customers[1].pk}
