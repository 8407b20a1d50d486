"""A small company for the customers tests: departments, one employee per role, a taxonomy with an
open, a single-choice, a locked and a department-scoped group, and customers followed by staff.

Import the fixture into a test module: `from tests.customers.world import world_fixture  # noqa: F401`.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from org.actors import Actor
from tests.factories import CustomerFactory, DepartmentFactory, EmployeeFactory, make_api_client, make_tag_group


@pytest.fixture(name="world")
def world_fixture(db, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast factories
    w = SimpleNamespace()
    w.sales = DepartmentFactory(name="销售部")
    w.sales_team = DepartmentFactory(name="销售一组", parent=w.sales)
    w.after_sales = DepartmentFactory(name="售后部")

    w.staff = EmployeeFactory(userid="zhangsan", name="张三", roles=["staff"], departments=[w.sales])
    w.team_staff = EmployeeFactory(userid="lisi", name="李四", roles=["staff"], departments=[w.sales_team])
    w.after_staff = EmployeeFactory(userid="wangwu", name="王五", roles=["staff"], departments=[w.after_sales])
    w.manager = EmployeeFactory(
        userid="boss", name="经理", roles=["manager"], departments=[w.sales], managed_departments=[w.sales]
    )
    w.tag_admin = EmployeeFactory(userid="tagadmin", name="标签管理员", roles=["tag_admin"])
    w.hr = EmployeeFactory(userid="hr", name="人事", roles=["hr"])
    w.admin = EmployeeFactory(userid="admin", name="管理员", roles=["enterprise_admin"])

    w.level, (w.vip, w.potential) = make_tag_group("客户等级", tags=["VIP客户", "潜在客户"])
    w.stage, (w.first_contact, w.hot, w.won) = make_tag_group(
        "转化阶段", single_choice=True, tags=["初次接触", "高意向", "已成交"]
    )
    w.key_group, (w.key_account,) = make_tag_group("重点客户", locked=True, tags=["京津冀重点客户"])
    w.service, (w.maintenance,) = make_tag_group("售后服务", departments=[w.after_sales], tags=["保养到期"])

    w.c_staff = CustomerFactory(name="张三的客户", followers=[w.staff])
    w.c_team = CustomerFactory(name="一组的客户", followers=[w.team_staff])
    w.c_after = CustomerFactory(name="售后的客户", followers=[w.after_staff])
    w.c_manager = CustomerFactory(name="经理的客户", followers=[w.manager])
    w.c_shared = CustomerFactory(name="共同客户", followers=[w.staff, w.after_staff])

    w.client, w.key = make_api_client("crm")
    w.enterprise = Actor(api_client=w.client)
    w.automation = Actor(label="rule:保养")
    return w


def actor(employee, client=None) -> Actor:
    return Actor(employee=employee, api_client=client)
