"""Bug fix: HR must not take over a privileged account. Holders of enterprise admin or tag admin
may have their login, password, departments, roles or status changed only by enterprise admins
(API and portal alike)."""

import pytest
from django.urls import reverse

from org.models import Employee, EmployeeStatus
from tests.conftest import as_employee
from tests.conftest import login as logged_in
from tests.factories import DepartmentFactory, EmployeeFactory

pytestmark = pytest.mark.django_db


def form_for(employee: Employee, **overrides) -> dict:
    data = {
        "userid": employee.userid,
        "name": employee.name,
        "status": employee.status,
        "roles": sorted(employee.roles),
        "departments": [d.pk for d in employee.departments.all()],
        "managed_departments": [d.pk for d in employee.managed_departments.all()],
        "new_password": "",
    }
    data.update(overrides)
    return data


@pytest.mark.parametrize(
    "change",
    [
        {"password": "taken-over-9876"},
        {"userid": "renamed"},
        {"departments": "NEW"},
        {"managed_departments": "NEW"},
        {"roles": ["tag_admin", "manager"]},
        {"status": "departed"},
    ],
    ids=lambda c: next(iter(c)),
)
def test_hr_cannot_change_a_tag_admins_account_through_the_api(change):
    tag_admin = EmployeeFactory(userid="taggy", roles=["tag_admin"])
    if change.get("departments") == "NEW" or change.get("managed_departments") == "NEW":
        change = {k: [DepartmentFactory().pk] for k in change}
    hr = as_employee(EmployeeFactory(roles=["hr"]))
    response = hr.patch(f"/api/v1/employees/{tag_admin.pk}/", change, format="json")
    assert response.status_code == 403, response.content
    assert response.json()["error"]["message"]
    after = Employee.objects.get(pk=tag_admin.pk)
    assert after.check_password("pass-1234") and not after.check_password("taken-over-9876")
    assert after.userid == "taggy" and after.status == EmployeeStatus.ACTIVE and after.is_active
    assert after.roles == {"tag_admin"}
    assert not after.departments.exists() and not after.managed_departments.exists()


def test_hr_cannot_delete_a_tag_admin():
    tag_admin = EmployeeFactory(roles=["tag_admin"])
    response = as_employee(EmployeeFactory(roles=["hr"])).delete(f"/api/v1/employees/{tag_admin.pk}/")
    assert response.status_code == 403
    assert Employee.objects.filter(pk=tag_admin.pk).exists()


def test_hr_may_still_rename_a_tag_admin_and_edit_staff():
    tag_admin = EmployeeFactory(roles=["tag_admin"])
    staff = EmployeeFactory(roles=["staff"])
    hr = as_employee(EmployeeFactory(roles=["hr"]))
    assert hr.patch(f"/api/v1/employees/{tag_admin.pk}/", {"name": "新名字"}, format="json").status_code == 200
    # sending the unchanged values back is not a change
    assert hr.patch(f"/api/v1/employees/{tag_admin.pk}/", {"roles": ["tag_admin"], "status": "active",
                                                          "departments": []}, format="json").status_code == 200
    assert Employee.objects.get(pk=tag_admin.pk).name == "新名字"
    response = hr.patch(f"/api/v1/employees/{staff.pk}/", {"password": "fresh-pass-4321"}, format="json")
    assert response.status_code == 200
    assert Employee.objects.get(pk=staff.pk).check_password("fresh-pass-4321")


def test_enterprise_admin_may_change_a_tag_admins_password(admin_user):
    tag_admin = EmployeeFactory(roles=["tag_admin"])
    response = as_employee(admin_user).patch(f"/api/v1/employees/{tag_admin.pk}/",
                                             {"password": "fresh-pass-4321", "status": "departed"}, format="json")
    assert response.status_code == 200, response.content
    after = Employee.objects.get(pk=tag_admin.pk)
    assert after.check_password("fresh-pass-4321") and after.status == EmployeeStatus.DEPARTED


def test_hr_cannot_set_a_tag_admins_password_in_the_portal():
    tag_admin = EmployeeFactory(roles=["tag_admin"])
    url = reverse("admin:org_employee_change", args=[tag_admin.pk])
    response = logged_in(EmployeeFactory(roles=["hr"])).post(url, form_for(tag_admin, new_password="taken-over-9876"))
    assert response.status_code == 200
    assert "只有企业管理员可以修改标签管理员" in response.content.decode()
    assert Employee.objects.get(pk=tag_admin.pk).check_password("pass-1234")


def test_hr_cannot_mark_a_tag_admin_departed_or_move_them_in_the_portal():
    tag_admin = EmployeeFactory(roles=["tag_admin"])
    other = DepartmentFactory()
    url = reverse("admin:org_employee_change", args=[tag_admin.pk])
    hr = logged_in(EmployeeFactory(roles=["hr"]))
    for change in ({"status": "departed"}, {"departments": [other.pk]}, {"userid": "renamed"}):
        response = hr.post(url, form_for(tag_admin, **change))
        assert response.status_code == 200, change
    after = Employee.objects.get(pk=tag_admin.pk)
    assert after.is_active and after.userid == tag_admin.userid and not after.departments.exists()


def test_hr_may_rename_a_tag_admin_and_an_enterprise_admin_may_do_all_in_the_portal(admin_user):
    tag_admin = EmployeeFactory(roles=["tag_admin"])
    url = reverse("admin:org_employee_change", args=[tag_admin.pk])
    response = logged_in(EmployeeFactory(roles=["hr"])).post(url, form_for(tag_admin, name="新名字"))
    assert response.status_code == 302
    tag_admin = Employee.objects.get(pk=tag_admin.pk)
    assert tag_admin.name == "新名字"
    response = logged_in(admin_user).post(url, form_for(tag_admin, new_password="fresh-pass-4321"))
    assert response.status_code == 302
    assert Employee.objects.get(pk=tag_admin.pk).check_password("fresh-pass-4321")


# ---------------------------------------------------------------- a 离职继承 is a status change too


def test_hr_cannot_mark_a_tag_admin_departed_through_a_transfer(django_capture_on_commit_callbacks):
    from customers.models import FollowRelation, RelationStatus, Transfer
    from tests.factories import CustomerFactory

    tag_admin = EmployeeFactory(userid="taggy", roles=["tag_admin"])
    EmployeeFactory(userid="heir")
    customer = CustomerFactory(followers=[tag_admin])
    hr = as_employee(EmployeeFactory(roles=["hr"]))
    body = {"from_employee": "taggy", "to_employees": ["heir"], "mark_departed": True}
    preview = hr.post("/api/v1/transfers/preview/", body, format="json").json()
    assert [e["field"] for e in preview["errors"]] == ["mark_departed"]
    response = hr.post("/api/v1/transfers/", body, format="json")
    assert response.status_code == 403, response.content
    assert not Transfer.objects.exists() and Employee.objects.get(pk=tag_admin.pk).is_active
    # 在职继承 (no departure) stays HR's to do
    with django_capture_on_commit_callbacks(execute=True):
        response = hr.post("/api/v1/transfers/", {**body, "mark_departed": False}, format="json")
    assert response.status_code == 202, response.content
    assert FollowRelation.objects.get(customer=customer, employee__userid="heir").status == RelationStatus.ACTIVE
    assert Employee.objects.get(pk=tag_admin.pk).is_active


def test_enterprise_admin_may_mark_a_tag_admin_departed_through_a_transfer(admin_user,
                                                                           django_capture_on_commit_callbacks):
    from tests.factories import CustomerFactory

    tag_admin = EmployeeFactory(userid="taggy", roles=["tag_admin"])
    EmployeeFactory(userid="heir")
    CustomerFactory(followers=[tag_admin])
    with django_capture_on_commit_callbacks(execute=True):
        response = as_employee(admin_user).post(
            "/api/v1/transfers/", {"from_employee": "taggy", "to_employees": ["heir"]}, format="json")
    assert response.status_code == 202, response.content
    assert Employee.objects.get(pk=tag_admin.pk).status == EmployeeStatus.DEPARTED


def test_hr_cannot_mark_a_tag_admin_departed_in_the_portal_transfer():
    from customers.models import Transfer
    from tests.factories import CustomerFactory

    tag_admin = EmployeeFactory(userid="taggy", roles=["tag_admin"])
    heir = EmployeeFactory(userid="heir")
    CustomerFactory(followers=[tag_admin])
    client = logged_in(EmployeeFactory(roles=["hr"]))
    url = reverse("admin:customers_transfer_start", args=[tag_admin.pk, "departed"])
    for step in ("preview_first", "confirm"):
        response = client.post(url, {"to_employees": [heir.pk], "keep_portrait": "on", "step": step})
        assert response.status_code == 200
        assert "只有企业管理员可以将企业管理员或标签管理员标记为离职" in response.content.decode()
    assert not Transfer.objects.exists() and Employee.objects.get(pk=tag_admin.pk).is_active
