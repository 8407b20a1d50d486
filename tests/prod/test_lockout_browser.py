"""In the browser: five wrong passwords lock the account at this address with a Chinese message on the
login page; an enterprise admin unlocks it on 系统 → 登录锁定 (at 390 px too); then the login works."""

from __future__ import annotations

import pytest

from tests.conftest import browser_login
from tests.factories import EmployeeFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_lockout_message_and_unlock_by_an_admin(page, browser, live_server, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    EmployeeFactory(userid="zhangwei", name="张伟", roles=["staff"])
    EmployeeFactory(userid="boss", name="管理员", roles=["enterprise_admin"])

    for _ in range(5):
        browser_login(page, "zhangwei", "wrong-password")
    error = page.locator(".errornote").inner_text()
    assert "登录失败次数过多" in error and "zhangwei" in error and "30 分钟" in error
    browser_login(page, "zhangwei")  # the right password: still locked
    assert "登录失败次数过多" in page.locator(".errornote").inner_text()

    context = browser.new_context(locale="zh-CN", base_url=live_server.url, viewport={"width": 390, "height": 844})
    admin = context.new_page()
    browser_login(admin, "boss")
    admin.click("text=登录锁定")
    admin.wait_for_load_state("networkidle")
    assert admin.evaluate("document.documentElement.scrollWidth <= window.innerWidth")  # no sideways scroll
    row = admin.locator("tr", has_text="zhangwei")
    row.locator("button", has_text="解锁").click()
    admin.wait_for_load_state("networkidle")
    assert "已解锁账号“zhangwei”" in admin.content()
    context.close()

    browser_login(page, "zhangwei")
    assert page.url.rstrip("/") == live_server.url.rstrip("/") or "/login/" not in page.url


def test_the_unlock_button_is_on_screen_at_phone_size(browser, live_server):
    """A locked pair from an IPv6 address (WeCom on a phone network) pushed 解锁 past the table's right
    edge at 390 px: it sat in the table's own scroll box, out of sight. Now the address wraps and the
    button is on the screen, in every row."""
    from axes.models import AccessAttempt
    from django.utils import timezone

    EmployeeFactory(userid="boss", name="管理员", roles=["enterprise_admin"])
    for username, address in (("zhangwei", "2408:8207:2461:5a10:8d3e:1f2a:6b7c:9e01"), ("wangjing", "203.0.113.42")):
        AccessAttempt.objects.create(username=username, ip_address=address, user_agent="Mozilla/5.0", get_data="",
                                     post_data="", http_accept="*/*", path_info="/login/", failures_since_start=5,
                                     attempt_time=timezone.now())
    context = browser.new_context(locale="zh-CN", base_url=live_server.url, viewport={"width": 390, "height": 844})
    admin = context.new_page()
    browser_login(admin, "boss")
    admin.goto("/login-lockouts/")
    buttons = admin.locator("#result_list button", has_text="解锁")
    assert buttons.count() == 2
    width = admin.evaluate("document.documentElement.clientWidth")
    for box in (buttons.nth(i).bounding_box() for i in range(2)):
        assert box["x"] >= 0 and box["x"] + box["width"] <= width, (box, width)
    assert admin.evaluate("(() => { const r = document.querySelector('#content-main .results');"
                          " return r.scrollWidth <= r.clientWidth; })()")
    context.close()
