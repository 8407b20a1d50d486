"""The demo company: every role present, explicit managed departments, safe to load twice."""

import pytest
from django.test import Client

from org import demo
from org.models import Department, Employee, Role

pytestmark = pytest.mark.django_db


def test_demo_company_has_regions_branches_and_every_role():
    demo.seed()
    beijing = Department.objects.get(name="北京分公司")
    assert beijing.parent.name == "华北区" and beijing.parent.parent.name == "总部"
    assert [d.name for d in beijing.get_children()] == ["销售部", "售后部"]
    assert Department.objects.filter(name="销售部").count() == 5
    assert Department.objects.filter(external_id__isnull=True).count() == 0
    assert Employee.objects.count() >= 24
    for role in Role.values:
        assert Employee.objects.filter(groups__name=role).exists(), role
    north = Employee.objects.get(userid="manager_north")
    assert {(d.parent.name, d.name) for d in north.managed_departments.all()} == {
        ("北京分公司", "销售部"),
        ("天津分公司", "销售部"),
    }


def test_demo_logins_work_and_the_departed_one_does_not():
    demo.seed()
    for userid in ("admin", "tagadmin", "hr", "manager_bj", "zhangwei"):
        client = Client()
        response = client.post("/login/", {"username": userid, "password": demo.DEMO_PASSWORD, "next": "/"})
        assert response.status_code == 302, userid
    assert Client().post("/login/", {"username": "liuyang", "password": demo.DEMO_PASSWORD}).status_code == 200


def test_seeding_twice_changes_nothing():
    demo.seed()
    before = (Department.objects.count(), Employee.objects.count())
    demo.seed()
    assert (Department.objects.count(), Employee.objects.count()) == before
