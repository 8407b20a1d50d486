"""Org selectors other apps rely on."""

import pytest

from org.actors import Actor
from org.selectors import department_member_ids, department_paths, visible_departments
from tests.factories import DepartmentFactory, EmployeeFactory

pytestmark = pytest.mark.django_db


def test_department_member_ids_are_exact_not_inherited():
    branch = DepartmentFactory(name="北京分公司")
    sales = DepartmentFactory(name="销售部", parent=branch)
    in_branch = EmployeeFactory(departments=[branch])
    in_sales = EmployeeFactory(departments=[sales])
    in_both = EmployeeFactory(departments=[branch, sales])
    EmployeeFactory()
    assert department_member_ids([branch.pk]) == {in_branch.pk, in_both.pk}
    assert department_member_ids([sales.pk]) == {in_sales.pk, in_both.pk}
    assert department_member_ids([]) == set()


def test_everyone_sees_the_whole_org_chart_in_tree_order():
    hq = DepartmentFactory(name="总部")
    b = DepartmentFactory(name="乙", parent=hq, order=20)
    DepartmentFactory(name="甲", parent=hq, order=10)
    DepartmentFactory(name="乙一", parent=b)
    staff = Actor(employee=EmployeeFactory(roles=["staff"]))
    assert [d.name for d in visible_departments(staff)] == ["总部", "甲", "乙", "乙一"]
    assert list(visible_departments(Actor())) == list(visible_departments(staff))


def test_department_paths_name_every_level():
    hq = DepartmentFactory(name="总部")
    north = DepartmentFactory(name="华北区", parent=hq)
    sales = DepartmentFactory(name="销售部", parent=north)
    assert department_paths()[sales.pk] == "总部 / 华北区 / 销售部"
    from org.models import Department

    assert department_paths(Department.objects.filter(pk=north.pk)) == {north.pk: "总部 / 华北区"}
