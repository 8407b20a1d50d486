"""`departments/` and `employees/` as API.md says: fields, roles' scope, error shape."""

import pytest

from org.models import Department, Employee, EmployeeStatus
from tests.conftest import as_employee
from tests.factories import DepartmentFactory, EmployeeFactory, make_api_client

pytestmark = pytest.mark.django_db

DEPARTMENT_FIELDS = {"id", "name", "parent", "order", "external_id"}
EMPLOYEE_FIELDS = {"id", "userid", "name", "departments", "managed_departments", "roles", "status"}


def assert_error(response, status, code=None):
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"}
    assert {"code", "message", "details"} <= set(body["error"])
    assert body["error"]["message"]
    if code:
        assert body["error"]["code"] == code
    return body["error"]


# ---------------------------------------------------------------- reading


def test_departments_list_has_the_fixed_fields_in_tree_order(key_api):
    root = DepartmentFactory(name="总部", external_id="1")
    north = DepartmentFactory(name="华北区", parent=root, order=10)
    DepartmentFactory(name="华东区", parent=root, order=20)
    DepartmentFactory(name="北京分公司", parent=north)

    body = key_api.get("/api/v1/departments/").json()

    assert set(body) == {"results", "next"}
    assert body["next"] is None
    assert [d["name"] for d in body["results"]] == ["总部", "华北区", "北京分公司", "华东区"]
    first = body["results"][0]
    assert set(first) >= DEPARTMENT_FIELDS
    assert first == first | {"id": root.pk, "parent": None, "external_id": "1"}
    assert body["results"][1]["parent"] == root.pk


def test_departments_paginate_with_next(key_api):
    for i in range(5):
        DepartmentFactory(name=f"部门{i}")
    page1 = key_api.get("/api/v1/departments/?page_size=2").json()
    assert len(page1["results"]) == 2 and page1["next"]
    seen = [d["id"] for d in page1["results"]]
    url = page1["next"]
    while url:
        page = key_api.get(url).json()
        seen += [d["id"] for d in page["results"]]
        url = page["next"]
    assert sorted(seen) == sorted(Department.objects.values_list("pk", flat=True))


def test_employees_list_gives_roles_departments_and_status(key_api):
    sales = DepartmentFactory(name="销售部")
    service = DepartmentFactory(name="售后部")
    EmployeeFactory(
        userid="boss", roles=["manager", "staff"], departments=[sales], managed_departments=[sales, service]
    )
    EmployeeFactory(userid="gone", status=EmployeeStatus.DEPARTED)

    results = {e["userid"]: e for e in key_api.get("/api/v1/employees/").json()["results"]}

    boss = results["boss"]
    assert set(boss) >= EMPLOYEE_FIELDS
    assert "password" not in boss
    assert boss["roles"] == ["manager", "staff"]
    assert boss["departments"] == [sales.pk]
    assert sorted(boss["managed_departments"]) == sorted([sales.pk, service.pk])
    assert boss["status"] == "active"
    assert results["gone"]["status"] == "departed"


def test_employees_filter_by_userid_and_department(key_api):
    dep = DepartmentFactory()
    EmployeeFactory(userid="in", departments=[dep])
    EmployeeFactory(userid="out")
    assert [e["userid"] for e in key_api.get(f"/api/v1/employees/?department={dep.pk}").json()["results"]] == ["in"]
    assert [e["userid"] for e in key_api.get("/api/v1/employees/?userid=out").json()["results"]] == ["out"]
    assert_error(key_api.get("/api/v1/employees/?department=abc"), 400, "invalid")


def test_staff_and_managers_read_departments_and_employees():
    dep = DepartmentFactory()
    for role in ("staff", "manager"):
        client = as_employee(EmployeeFactory(roles=[role], departments=[dep]))
        assert client.get("/api/v1/departments/").status_code == 200
        assert client.get(f"/api/v1/departments/{dep.pk}/").json()["name"] == dep.name
        assert client.get("/api/v1/employees/").status_code == 200


# ---------------------------------------------------------------- writing departments


def test_enterprise_key_creates_updates_and_deletes_a_department(key_api):
    root = DepartmentFactory(name="总部")
    created = key_api.post(
        "/api/v1/departments/", {"name": " 深圳分公司 ", "parent": root.pk, "external_id": "41"}, format="json"
    )
    assert created.status_code == 201, created.content
    dep_id = created.json()["id"]
    assert created.json()["name"] == "深圳分公司"
    assert Department.objects.get(pk=dep_id).parent == root

    changed = key_api.patch(f"/api/v1/departments/{dep_id}/", {"name": "深圳分公司（新）"}, format="json")
    assert changed.status_code == 200 and changed.json()["name"] == "深圳分公司（新）"

    assert key_api.delete(f"/api/v1/departments/{dep_id}/").status_code == 204
    assert not Department.objects.filter(pk=dep_id).exists()


def test_enterprise_admin_session_may_write_departments(admin_user):
    response = as_employee(admin_user).post("/api/v1/departments/", {"name": "新部门"}, format="json")
    assert response.status_code == 201


@pytest.mark.parametrize("role", ["staff", "manager", "hr", "tag_admin"])
def test_only_enterprise_admins_write_departments(role):
    dep = DepartmentFactory(name="原名")
    client = as_employee(EmployeeFactory(roles=[role]))
    assert_error(client.post("/api/v1/departments/", {"name": "新部门"}, format="json"), 403)
    assert_error(client.patch(f"/api/v1/departments/{dep.pk}/", {"name": "改名"}, format="json"), 403)
    assert_error(client.delete(f"/api/v1/departments/{dep.pk}/"), 403)
    dep.refresh_from_db()
    assert dep.name == "原名"
    assert Department.objects.count() == 1


def test_api_key_acting_for_staff_cannot_write_departments(key_api):
    EmployeeFactory(userid="xiaoming", roles=["staff"])
    response = key_api.post("/api/v1/departments/?employee=xiaoming", {"name": "新部门"}, format="json")
    assert_error(response, 403)
    assert not Department.objects.exists()


def test_read_only_key_reads_but_cannot_write(read_only_api):
    dep = DepartmentFactory()
    assert read_only_api.get("/api/v1/departments/").status_code == 200
    assert_error(read_only_api.post("/api/v1/departments/", {"name": "新部门"}, format="json"), 403)
    assert_error(read_only_api.patch(f"/api/v1/departments/{dep.pk}/", {"name": "x"}, format="json"), 403)
    assert_error(read_only_api.post("/api/v1/employees/", {"userid": "u", "name": "n"}, format="json"), 403)
    assert Department.objects.count() == 1 and not Employee.objects.exists()


def test_revoked_key_gets_401(api):
    from django.utils import timezone

    client, key = make_api_client("old")
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    assert api.get("/api/v1/departments/").status_code == 200
    client.revoked_at = timezone.now()
    client.save()
    assert_error(api.get("/api/v1/departments/"), 401)
    assert_error(api.post("/api/v1/departments/", {"name": "x"}, format="json"), 401)


def test_no_or_unknown_credentials_get_401(api):
    assert_error(api.get("/api/v1/departments/"), 401)
    api.credentials(HTTP_AUTHORIZATION="Bearer tp_not-a-key")
    assert_error(api.get("/api/v1/employees/"), 401)


def test_unknown_parent_is_400_and_creates_nothing(key_api):
    error = assert_error(key_api.post("/api/v1/departments/", {"name": "孤儿", "parent": 999999}, format="json"), 400)
    assert "parent" in error["details"]
    assert not Department.objects.exists()


def test_moving_a_department_under_its_own_child_is_400_and_changes_nothing(key_api):
    root = DepartmentFactory(name="华北区")
    child = DepartmentFactory(name="北京分公司", parent=root)
    grandchild = DepartmentFactory(name="销售部", parent=child)

    for new_parent in (child, grandchild, root):
        error = assert_error(key_api.patch(f"/api/v1/departments/{root.pk}/", {"parent": new_parent.pk}, format="json"),
                             400, "cycle")
        assert "parent" in error["details"]
    root.refresh_from_db()
    assert root.parent is None
    assert [d.name for d in root.get_descendants()] == ["北京分公司", "销售部"]


def test_a_name_of_200_characters_is_400(key_api):
    dep = DepartmentFactory(name="短名")
    error = assert_error(key_api.post("/api/v1/departments/", {"name": "长" * 200}, format="json"), 400, "invalid")
    assert "name" in error["details"]
    assert_error(key_api.patch(f"/api/v1/departments/{dep.pk}/", {"name": "长" * 200}, format="json"), 400)
    assert_error(key_api.post("/api/v1/departments/", {"name": "   "}, format="json"), 400)
    dep.refresh_from_db()
    assert dep.name == "短名" and Department.objects.count() == 1


def test_duplicate_external_id_is_400(key_api):
    DepartmentFactory(external_id="7")
    assert_error(key_api.post("/api/v1/departments/", {"name": "x", "external_id": "7"}, format="json"), 400)


def test_moving_a_department_elsewhere_through_the_api(key_api):
    north, east = DepartmentFactory(name="华北区"), DepartmentFactory(name="华东区")
    branch = DepartmentFactory(name="上海分公司", parent=north)
    DepartmentFactory(name="销售部", parent=branch)
    response = key_api.patch(f"/api/v1/departments/{branch.pk}/", {"parent": east.pk}, format="json")
    assert response.status_code == 200 and response.json()["parent"] == east.pk
    east.refresh_from_db()
    assert [d.name for d in east.get_descendants()] == ["上海分公司", "销售部"]


def test_department_in_use_cannot_be_deleted(key_api):
    dep = DepartmentFactory()
    EmployeeFactory(departments=[dep])
    assert_error(key_api.delete(f"/api/v1/departments/{dep.pk}/"), 409, "in_use")
    assert Department.objects.filter(pk=dep.pk).exists()


def test_unknown_department_is_404_in_error_shape(key_api):
    assert_error(key_api.get("/api/v1/departments/999999/"), 404, "not_found")


# ---------------------------------------------------------------- writing employees


def test_hr_creates_and_updates_employees(key_api):
    hr = EmployeeFactory(userid="hr", roles=["hr"])
    dep = DepartmentFactory()
    client = as_employee(hr)
    created = client.post(
        "/api/v1/employees/",
        {"userid": "xiaohong", "name": "小红", "departments": [dep.pk], "roles": ["staff"], "password": "secret-123"},
        format="json",
    )
    assert created.status_code == 201, created.content
    assert created.json()["roles"] == ["staff"] and created.json()["departments"] == [dep.pk]
    emp = Employee.objects.get(userid="xiaohong")
    assert emp.check_password("secret-123")

    changed = client.patch(f"/api/v1/employees/{emp.pk}/", {"roles": ["manager"], "managed_departments": [dep.pk]},
                           format="json")
    assert changed.status_code == 200, changed.content
    assert changed.json()["roles"] == ["manager"] and changed.json()["managed_departments"] == [dep.pk]


def test_marking_departed_through_the_api(key_api):
    emp = EmployeeFactory(userid="leaving")
    response = key_api.patch(f"/api/v1/employees/{emp.pk}/", {"status": "departed"}, format="json")
    assert response.status_code == 200 and response.json()["status"] == "departed"
    emp.refresh_from_db()
    assert not emp.is_active and emp.departed_at is not None
    back = key_api.patch(f"/api/v1/employees/{emp.pk}/", {"status": "active"}, format="json").json()
    assert back["status"] == "active"
    emp.refresh_from_db()
    assert emp.is_active and emp.departed_at is None


@pytest.mark.parametrize("role", ["staff", "manager", "tag_admin"])
def test_only_enterprise_admins_and_hr_write_employees(role):
    target = EmployeeFactory(name="原名")
    client = as_employee(EmployeeFactory(roles=[role]))
    assert_error(client.post("/api/v1/employees/", {"userid": "x", "name": "x"}, format="json"), 403)
    assert_error(client.patch(f"/api/v1/employees/{target.pk}/", {"name": "改名"}, format="json"), 403)
    target.refresh_from_db()
    assert target.name == "原名"


@pytest.mark.parametrize("role", ["enterprise_admin", "tag_admin"])
def test_hr_cannot_grant_privileged_roles(role):
    target = EmployeeFactory(roles=["staff"])
    client = as_employee(EmployeeFactory(roles=["hr"]))
    assert_error(client.patch(f"/api/v1/employees/{target.pk}/", {"roles": ["staff", role]}, format="json"), 403)
    assert_error(client.post("/api/v1/employees/", {"userid": "x", "name": "x", "roles": [role]}, format="json"), 403)
    assert target.roles == {"staff"}
    assert not Employee.objects.filter(userid="x").exists()


def test_hr_cannot_take_away_a_tag_admins_role_or_touch_an_enterprise_admin(admin_user):
    tag_admin = EmployeeFactory(roles=["tag_admin"])
    client = as_employee(EmployeeFactory(roles=["hr"]))
    assert_error(client.patch(f"/api/v1/employees/{tag_admin.pk}/", {"roles": ["staff"]}, format="json"), 403)
    assert_error(client.patch(f"/api/v1/employees/{admin_user.pk}/", {"status": "departed"}, format="json"), 403)
    admin_user.refresh_from_db()
    assert admin_user.is_active


def test_enterprise_admin_grants_tag_admin(admin_user):
    target = EmployeeFactory(roles=["staff"])
    response = as_employee(admin_user).patch(f"/api/v1/employees/{target.pk}/", {"roles": ["tag_admin"]}, format="json")
    assert response.status_code == 200 and response.json()["roles"] == ["tag_admin"]


def test_bad_employee_input_is_400(key_api):
    EmployeeFactory(userid="taken")
    assert_error(key_api.post("/api/v1/employees/", {"userid": "taken", "name": "x"}, format="json"), 400)
    assert_error(key_api.post("/api/v1/employees/", {"userid": "y", "name": "y", "roles": ["king"]}, format="json"),
                 400)
    assert_error(key_api.post("/api/v1/employees/", {"userid": "y", "name": "y", "departments": [999999]},
                              format="json"), 400)
    assert_error(key_api.post("/api/v1/employees/", {"userid": "y", "name": "y", "status": "asleep"}, format="json"),
                 400)
    assert not Employee.objects.filter(userid="y").exists()


# ---------------------------------------------------------------- routes and docs


def test_unknown_api_route_is_404_in_error_shape(key_api, api):
    assert_error(key_api.get("/api/v1/no-such-thing/"), 404, "not_found")
    assert_error(api.get("/api/nothing/here"), 404, "not_found")


def test_openapi_schema_and_docs_are_served(admin_user, client):
    schema = client.get("/api/schema/")
    assert schema.status_code == 200
    assert b"/api/v1/departments/" in schema.content and b"/api/v1/employees/" in schema.content
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    html = docs.content.decode()
    assert "swagger-ui" in html
    assert "cdn.jsdelivr.net" not in html and "unpkg.com" not in html  # works offline


def test_a_key_acting_for_a_departed_employee_is_refused(key_api):
    EmployeeFactory(userid="leaver", roles=["hr"], status=EmployeeStatus.DEPARTED)
    assert_error(key_api.get("/api/v1/employees/?employee=leaver"), 403, "departed")
    assert_error(key_api.post("/api/v1/employees/", {"userid": "x", "name": "x", "employee": "leaver"},
                              format="json"), 403)
    assert not Employee.objects.filter(userid="x").exists()


def test_a_key_acting_for_hr_writes_employees_but_not_departments(key_api):
    EmployeeFactory(userid="hr", roles=["hr"])
    created = key_api.post("/api/v1/employees/", {"userid": "x", "name": "新人", "employee": "hr"}, format="json")
    assert created.status_code == 201 and created.json()["roles"] == ["staff"]
    assert_error(key_api.post("/api/v1/departments/?employee=hr", {"name": "新部门"}, format="json"), 403)
    assert_error(key_api.get("/api/v1/employees/?employee=nobody"), 400)


def test_an_employee_without_history_can_be_deleted(key_api):
    fresh = EmployeeFactory()
    assert key_api.delete(f"/api/v1/employees/{fresh.pk}/").status_code == 204
    assert not Employee.objects.filter(pk=fresh.pk).exists()


def test_order_and_parent_null_through_the_api(key_api):
    hq = DepartmentFactory(name="总部")
    a = key_api.post("/api/v1/departments/", {"name": "甲", "parent": hq.pk}, format="json").json()
    b = key_api.post("/api/v1/departments/", {"name": "乙", "parent": hq.pk}, format="json").json()
    assert (a["order"], b["order"]) == (10, 20)  # appended last
    key_api.patch(f"/api/v1/departments/{b['id']}/", {"order": 5}, format="json")
    assert [d.name for d in Department.objects.get(pk=hq.pk).get_children()] == ["乙", "甲"]
    root = key_api.patch(f"/api/v1/departments/{a['id']}/", {"parent": None}, format="json").json()
    assert root["parent"] is None and root["level"] == 0
    roots = key_api.get("/api/v1/departments/?parent=null").json()["results"]
    assert {d["name"] for d in roots} == {"总部", "甲"}
