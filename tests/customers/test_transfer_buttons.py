"""The 离职继承 / 在职继承 buttons on the employee page show only to those who may transfer
(HR, enterprise admins); others who can open the page do not see them (a click would be 403)."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from org import admin as org_admin
from tests.factories import EmployeeFactory

pytestmark = pytest.mark.django_db


def employee_page(viewer, target) -> tuple[int, str]:
    client = Client()
    client.force_login(viewer)
    response = client.get(reverse("admin:org_employee_change", args=[target.pk]))
    return response.status_code, response.content.decode()


def transfer_links(target) -> list[str]:
    return [reverse("admin:customers_transfer_departed", args=[target.pk]),
            reverse("admin:customers_transfer_onjob", args=[target.pk])]


@pytest.mark.parametrize("role", ["tag_admin", "manager"])
def test_no_transfer_buttons_for_those_who_may_not_transfer(role):
    target = EmployeeFactory(userid="zhangsan")
    status, html = employee_page(EmployeeFactory(roles=[role]), target)
    assert status == 200
    for url in transfer_links(target):
        assert url not in html
    assert "离职继承" not in html and "在职继承" not in html


@pytest.mark.parametrize("role", ["hr", "enterprise_admin"])
def test_transfer_buttons_for_hr_and_enterprise_admins(role):
    target = EmployeeFactory(userid="zhangsan")
    status, html = employee_page(EmployeeFactory(roles=[role]), target)
    assert status == 200
    for url in transfer_links(target):
        assert url in html


def test_tools_without_a_predicate_still_show_to_all(monkeypatch):
    monkeypatch.setattr(org_admin, "_employee_tools", [])
    org_admin.register_employee_tool("查看历史", "admin:org_employee_history")
    org_admin.register_employee_tool("只给人事", "admin:org_employee_delete",
                                     allowed=lambda request, emp: request.user.has_role("hr"))
    target = EmployeeFactory()
    _status, html = employee_page(EmployeeFactory(roles=["manager"]), target)
    assert "查看历史" in html and "只给人事" not in html
