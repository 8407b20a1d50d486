"""HR starts from "who left and still has customers": the front page's 离职继承 opens 待分配离职成员
(departed employees with the number of customers each still has to hand over, each with 开始离职继承);
the inheritor picker shows department paths and filters on any part of them; the preview names every
customer's inheritor, page by page; the employee list shows each person's customer count."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from playwright.sync_api import expect

from customers.models import FollowRelation, RelationStatus, Transfer
from org.models import EmployeeStatus
from tests.conftest import browser_login, login
from tests.factories import CustomerFactory, DepartmentFactory, EmployeeFactory


def depart(employee):
    employee.status = EmployeeStatus.DEPARTED
    employee.save()
    return employee


@pytest.fixture
def company(db):
    head = DepartmentFactory(name="总部")
    north = DepartmentFactory(name="华北区", parent=head)
    bj = DepartmentFactory(name="北京分公司", parent=north)
    sh = DepartmentFactory(name="上海分公司", parent=head)
    bj_sales = DepartmentFactory(name="销售部", parent=bj)
    sh_sales = DepartmentFactory(name="销售部", parent=sh)
    hr = EmployeeFactory(userid="hr", name="王芳", roles=["hr"])
    liu = EmployeeFactory(userid="liuyang", name="刘洋", departments=[bj_sales])
    chen = EmployeeFactory(userid="chenchen", name="陈晨", departments=[sh_sales])
    gone_empty = EmployeeFactory(userid="olduser", name="老员工", departments=[sh_sales])
    zhang = EmployeeFactory(userid="zhangwei", name="张伟", departments=[bj_sales])
    wang = EmployeeFactory(userid="wangjing", name="王静", departments=[sh_sales])
    liu_customers = CustomerFactory.create_batch(57, followers=[liu])
    FollowRelation.objects.filter(customer=liu_customers[0], employee=liu).update(remark="北京王总")
    CustomerFactory(followers=[wang, zhang])
    chen_customers = CustomerFactory.create_batch(3, followers=[chen])
    for e in (liu, chen, gone_empty):
        depart(e)
    return {"hr": hr, "liu": liu, "chen": chen, "gone_empty": gone_empty, "zhang": zhang, "wang": wang,
            "liu_customers": liu_customers, "chen_customers": chen_customers}


def test_pending_lists_departed_employees_with_customers_to_hand_over(company):
    page = login(company["hr"]).get(reverse("admin:customers_transfer_pending")).content.decode()
    rows = re.findall(r'<tr data-userid="(\w+)">(.*?)</tr>', page, re.S)
    assert [userid for userid, _row in rows] == ["liuyang", "chenchen"]  # most waiting first; none without
    liu_row, chen_row = rows[0][1], rows[1][1]
    assert '<td class="num tp-waiting">57</td>' in liu_row and '<td class="num tp-waiting">3</td>' in chen_row
    assert "总部 / 华北区 / 北京分公司 / 销售部" in liu_row
    start = reverse("admin:customers_transfer_start", args=[company["liu"].pk, "departed"])
    assert f'href="{start}"' in liu_row and "开始离职继承" in liu_row
    assert "2 位离职成员还有 60 位客户待分配" in page

    everyone = login(company["hr"]).get(reverse("admin:customers_transfer_pending") + "?all=1").content.decode()
    assert 'data-userid="olduser"' in everyone and "无待分配客户" in everyone


def test_only_hr_and_admins_see_the_pending_list(company):
    response = login(company["zhang"]).get(reverse("admin:customers_transfer_pending"))
    assert response.status_code == 403


def test_front_page_link_goes_to_the_pending_list(company):
    front = login(company["hr"]).get(reverse("admin:index")).content.decode()
    assert f'<a href="{reverse("admin:customers_transfer_pending")}">离职继承</a>' in front


def test_inheritor_picker_shows_department_paths(company):
    url = reverse("admin:customers_transfer_start", args=[company["liu"].pk, "departed"])
    page = login(company["hr"]).get(url).content.decode()
    assert "张伟 (zhangwei) · 总部 / 华北区 / 北京分公司 / 销售部" in page
    assert "王静 (wangjing) · 总部 / 上海分公司 / 销售部" in page


def test_preview_names_every_customers_inheritor_page_by_page(company):
    liu, zhang, wang = company["liu"], company["zhang"], company["wang"]
    client = login(company["hr"])
    url = reverse("admin:customers_transfer_start", args=[liu.pk, "departed"])
    data = {"to_employees": [zhang.pk, wang.pk], "keep_portrait": "on", "step": "preview_first"}
    seen: dict[str, str] = {}
    for step in ("preview_first", "page:2"):
        page = client.post(url, {**data, "step": step}).content.decode()
        table = re.search(r'<table id="tp-assignments">(.*?)</table>', page, re.S).group(1)
        for name, to in re.findall(r"<tr><td>(客户\d+).*?</td>.*?<td>(\S+ \(\w+\))", table, re.S):
            seen[name] = to
    page3 = client.post(url, {**data, "step": "page:3"}).content.decode()
    assert "共 57 位客户" in page3
    table = re.search(r'<table id="tp-assignments">(.*?)</table>', page3, re.S).group(1)
    for name, to in re.findall(r"<tr><td>(客户\d+).*?</td>.*?<td>(\S+ \(\w+\))", table, re.S):
        seen[name] = to
    assert set(seen) == {c.name for c in company["liu_customers"]}  # every customer, once
    assert set(seen.values()) == {"张伟 (zhangwei)", "王静 (wangjing)"}
    assert "北京王总" in client.post(url, data).content.decode()  # the departed's remark helps tell them apart
    assert not Transfer.objects.exists()


def test_employee_list_shows_customer_counts_without_a_query_per_row(company):
    client = login(company["hr"])
    url = reverse("admin:org_employee_changelist")
    with CaptureQueriesContext(connection) as few:
        page = client.get(url).content.decode()
    assert '<td class="field-tp_customers">57</td>' in page
    EmployeeFactory.create_batch(10, departments=[DepartmentFactory()])
    for e in EmployeeFactory.create_batch(5):
        CustomerFactory(followers=[e])
    with CaptureQueriesContext(connection) as many:
        client.get(url)
    assert len(many) == len(few)


@pytest.mark.browser
def test_hr_reaches_departed_transfer_in_two_clicks(page, transactional_db):
    from django.apps import apps

    from org.roles import sync_role_permissions

    sync_role_permissions(apps)
    sales = DepartmentFactory(name="销售部", parent=DepartmentFactory(name="北京分公司"))
    EmployeeFactory(userid="hr", name="王芳", roles=["hr"])
    liu = EmployeeFactory(userid="liuyang", name="刘洋", departments=[sales])
    EmployeeFactory(userid="zhangwei", name="张伟", departments=[sales])
    CustomerFactory.create_batch(4, followers=[liu])
    depart(liu)

    browser_login(page, "hr")
    page.locator("#tp-section-hr").get_by_role("link", name="离职继承", exact=True).click()  # click 1
    row = page.locator("#tp-pending tr[data-userid=liuyang]")
    expect(row.locator(".tp-waiting")).to_have_text("4")
    row.get_by_role("link", name="开始离职继承").click()  # click 2
    expect(page).to_have_url(re.compile(rf"/customers/transfer/start/{liu.pk}/departed/$"))
    expect(page.locator(".tp-summary").first).to_contain_text("正在跟进 4 位客户")
    page.locator("#tp-inheritor-filter").fill("北京分公司")
    expect(page.locator("#id_to_employees label:visible")).to_have_count(1)
    page.locator("#id_to_employees label", has_text="张伟").click()
    page.get_by_role("button", name="下一步：预览").click()
    expect(page.locator("#tp-assignments tbody tr")).to_have_count(4)
    expect(page.locator("#tp-assignments")).to_contain_text("张伟 (zhangwei)")
    assert FollowRelation.objects.filter(employee=liu, status=RelationStatus.ACTIVE).count() == 4


def test_a_manager_sees_customer_counts_only_for_the_members_whose_customers_they_see(company):
    """A manager of 北京 销售部 sees 张伟's count; 王静 (上海) is outside their scope: "-", not her count."""
    bj_sales = company["zhang"].departments.get()
    manager = EmployeeFactory(userid="manager_bj", name="北京经理", roles=["manager"], managed_departments=[bj_sales])
    page = login(manager).get(reverse("admin:org_employee_changelist")).content.decode()
    cell = r'<a href="[^"]*/(\d+)/change/[^"]*">[^<]*</a>.*?<td class="field-tp_customers">([^<]*)</td>'
    rows = dict(re.findall(cell, page, flags=re.S))
    assert rows.get(str(company["zhang"].pk)) == "1"
    assert rows.get(str(company["wang"].pk)) == "-"
