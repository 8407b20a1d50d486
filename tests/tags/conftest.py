"""Helpers for the taxonomy tests: actors of each role and a small company."""

from __future__ import annotations

import pytest

from org.actors import Actor
from tests.factories import DepartmentFactory, EmployeeFactory


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """Factories hash "pass-1234" for every employee; PBKDF2 made these tests crawl."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def tag_admin(db):
    return EmployeeFactory(userid="tagadmin", name="标签管理员", roles=["tag_admin"])


@pytest.fixture
def admin_actor(tag_admin):
    return Actor(employee=tag_admin)


@pytest.fixture
def company(db):
    """总部 > 华北区 > 北京分公司 > 售后部 / 销售部; 华东区. Members: staff in 售后部, manager in 华北区."""
    hq = DepartmentFactory(name="总部", external_id="1")
    north = DepartmentFactory(name="华北区", parent=hq, external_id="2")
    east = DepartmentFactory(name="华东区", parent=hq, external_id="3")
    beijing = DepartmentFactory(name="北京分公司", parent=north, external_id="4")
    after_sales = DepartmentFactory(name="售后部", parent=beijing, external_id="5")
    sales = DepartmentFactory(name="销售部", parent=beijing, external_id="6")
    staff = EmployeeFactory(userid="zhangsan", name="张三", roles=["staff"], departments=[after_sales])
    seller = EmployeeFactory(userid="lisi", name="李四", roles=["staff"], departments=[sales])
    manager = EmployeeFactory(userid="wangwu", name="王五", roles=["manager"], departments=[north],
                              managed_departments=[beijing])
    return type("Company", (), dict(hq=hq, north=north, east=east, beijing=beijing, after_sales=after_sales,
                                    sales=sales, staff=staff, seller=seller, manager=manager))
