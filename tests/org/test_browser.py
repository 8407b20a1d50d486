"""A real browser: an HR user logs in, sees the Chinese portal, opens the department tree."""

import pytest

from tests.conftest import browser_login
from tests.factories import DepartmentFactory, EmployeeFactory


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_hr_logs_in_sees_the_chinese_portal_and_the_department_tree(page):
    hq = DepartmentFactory(name="总部")
    north = DepartmentFactory(name="华北区", parent=hq, order=10)
    DepartmentFactory(name="北京分公司", parent=north)
    DepartmentFactory(name="华东区", parent=hq, order=20)
    EmployeeFactory(userid="hr", name="王芳", roles=["hr"])

    browser_login(page, "hr")

    assert page.locator("html").get_attribute("lang") == "zh-hans"
    assert "tagportal 客户标签平台" in page.locator("#site-name").inner_text()
    hr_section = page.locator("#tp-section-hr")
    assert "人事" in hr_section.inner_text()

    hr_section.get_by_role("link", name="部门").click()
    page.wait_for_load_state("networkidle")

    assert "部门" in page.locator("h1").inner_text()
    rows = page.locator("#result_list .tp-dept")
    assert rows.all_inner_texts() == ["总部", "华北区", "北京分公司", "华东区"]
    assert page.locator("#result_list tr:has-text('北京分公司')").is_visible()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_admin_drags_a_department_before_another_in_the_tree(page):
    from org.models import Department

    hq = DepartmentFactory(name="总部")
    DepartmentFactory(name="华北区", parent=hq, order=10)
    DepartmentFactory(name="华东区", parent=hq, order=20)
    DepartmentFactory(name="华南区", parent=hq, order=30)
    EmployeeFactory(userid="boss", roles=["enterprise_admin"])
    browser_login(page, "boss")
    page.goto("/org/department/")

    handle = page.locator("#result_list tr:has-text('华南区') .drag-handle").bounding_box()
    target = page.locator("#result_list tr:has-text('华北区')").bounding_box()
    page.mouse.move(handle["x"] + handle["width"] / 2, handle["y"] + handle["height"] / 2)
    page.mouse.down()
    page.mouse.move(target["x"] + 200, target["y"] + target["height"] / 2, steps=5)
    page.mouse.move(target["x"] + 200, target["y"] + 3, steps=3)  # top third of the row: before it
    with page.expect_navigation():
        page.mouse.up()
    page.wait_for_load_state("networkidle")

    assert page.locator("#result_list .tp-dept").all_inner_texts() == ["总部", "华南区", "华北区", "华东区"]
    assert page.locator(".messagelist").inner_text().strip() == "已移动部门“华南区”。"
    children = Department.objects.get(pk=hq.pk).get_children()
    assert [(d.name, d.order) for d in children] == [("华南区", 10), ("华北区", 20), ("华东区", 30)]


@pytest.mark.browser
def test_english_browser_gets_the_chinese_login_page_until_it_switches(browser, live_server):
    context = browser.new_context(locale="en-US", base_url=live_server.url)
    try:
        page = context.new_page()
        page.goto("/login/")
        assert page.locator("input[type=submit]").input_value() == "登录"
        context.add_cookies([{"name": "django_language", "value": "en", "url": live_server.url}])
        page.goto("/login/")
        assert page.locator("input[type=submit]").input_value() == "Log in"
    finally:
        context.close()
