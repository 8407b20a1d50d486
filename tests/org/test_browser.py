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
