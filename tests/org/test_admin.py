"""The portal (Django admin) for org: front page, language, employees, the department tree,
API clients. Through the real admin views, as a user clicks them."""

import re

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from org import admin as org_admin
from org.models import ApiClient, Department, Employee, EmployeeStatus
from tests.conftest import login as logged_in
from tests.factories import DepartmentFactory, EmployeeFactory

pytestmark = pytest.mark.django_db


def employee_form(**overrides) -> dict:
    data = {"userid": "xiaohong", "name": "小红", "status": "active", "roles": ["staff"], "new_password": ""}
    data.update(overrides)
    return data


# ---------------------------------------------------------------- front page and language


def test_front_page_is_chinese_and_shows_the_sections_of_the_users_roles():
    hr = EmployeeFactory(roles=["hr"])
    html = logged_in(hr).get("/").content.decode()
    assert "tagportal 客户标签平台" in html
    assert 'id="tp-section-hr"' in html
    assert reverse("admin:org_employee_changelist") in html
    assert 'id="tp-section-tag_admin"' not in html
    assert 'id="tp-section-enterprise_admin"' not in html
    assert 'action="/i18n/setlang/"' in html


def test_front_page_of_a_tag_admin_and_of_an_enterprise_admin(admin_user):
    tag_admin_html = logged_in(EmployeeFactory(roles=["tag_admin"])).get("/").content.decode()
    assert 'id="tp-section-tag_admin"' in tag_admin_html and 'id="tp-section-hr"' not in tag_admin_html
    admin_html = logged_in(admin_user).get("/").content.decode()
    for key in ("tag_admin", "hr", "manager", "enterprise_admin"):
        assert f'id="tp-section-{key}"' in admin_html
    assert reverse("admin:org_apiclient_changelist") in admin_html


def test_roles_are_given_on_the_employee_form_not_on_djangos_group_pages(admin_user):
    """The roles are fixed; Django's group pages (raw permission names, edits the next migration
    undoes) are not in the portal, neither in the menu nor by address."""
    client = logged_in(admin_user)
    html = client.get("/").content.decode()
    assert "/auth/group/" not in html and "角色与权限" not in html
    assert client.get("/auth/group/").status_code == 404
    form = client.get(reverse("admin:org_employee_add")).content.decode()
    assert "企业管理员" in form and "标签管理员" in form  # the five roles, by their names


def test_language_switch_to_english_and_back():
    client = logged_in(EmployeeFactory(roles=["hr"]))
    assert 'lang="zh-hans"' in client.get("/").content.decode()
    response = client.post("/i18n/setlang/", {"language": "en", "next": "/"})
    assert response.status_code == 302
    english = client.get("/").content.decode()
    assert 'lang="en"' in english
    assert "Workbench" in english and "tagportal customer tags" in english and "工作台" not in english
    client.post("/i18n/setlang/", {"language": "zh-hans", "next": "/"})
    assert 'lang="zh-hans"' in client.get("/").content.decode()


def test_login_page_is_chinese_by_default():
    html = Client().get("/login/").content.decode()
    assert 'lang="zh-hans"' in html and "登录" in html


# ---------------------------------------------------------------- departed employees


def test_departed_employee_cannot_log_in_through_the_login_form():
    EmployeeFactory(userid="leaver", status=EmployeeStatus.DEPARTED)
    EmployeeFactory(userid="stayer")
    client = Client()
    refused = client.post("/login/", {"username": "leaver", "password": "pass-1234", "next": "/"})
    assert refused.status_code == 200  # the form again, with an error
    assert "_auth_user_id" not in client.session
    accepted = client.post("/login/", {"username": "stayer", "password": "pass-1234", "next": "/"})
    assert accepted.status_code == 302
    assert "_auth_user_id" in client.session


def test_marking_departed_ends_an_open_session_in_portal_and_api(admin_user):
    leaver = EmployeeFactory(userid="leaver", roles=["staff"])
    client = Client()
    assert client.post("/login/", {"username": "leaver", "password": "pass-1234", "next": "/"}).status_code == 302
    assert client.get("/api/v1/departments/").status_code == 200

    form = employee_form(userid="leaver", name=leaver.name, status="departed")
    response = logged_in(admin_user).post(reverse("admin:org_employee_change", args=[leaver.pk]), form)
    assert response.status_code == 302, response.content.decode()[:2000]

    assert client.get("/api/v1/departments/").status_code in (401, 403)
    assert client.get("/").status_code == 302  # back to the login page
    assert client.post("/login/", {"username": "leaver", "password": "pass-1234"}).status_code == 200


# ---------------------------------------------------------------- employees


def test_hr_adds_an_employee_with_roles_and_departments():
    hr = EmployeeFactory(roles=["hr"])
    sales = DepartmentFactory(name="销售部")
    form = employee_form(roles=["staff", "manager"], departments=[sales.pk], managed_departments=[sales.pk],
                         new_password="start-1234")
    response = logged_in(hr).post(reverse("admin:org_employee_add"), form)
    assert response.status_code == 302, response.content.decode()[:3000]
    emp = Employee.objects.get(userid="xiaohong")
    assert emp.roles == {"staff", "manager"}
    assert list(emp.departments.all()) == [sales] and list(emp.managed_departments.all()) == [sales]
    assert emp.check_password("start-1234")


def test_employee_form_shows_roles_as_checkboxes_and_indented_departments():
    north = DepartmentFactory(name="北京分公司")
    DepartmentFactory(name="销售部", parent=north)
    html = logged_in(EmployeeFactory(roles=["hr"])).get(reverse("admin:org_employee_add")).content.decode()
    for role in ("enterprise_admin", "tag_admin", "hr", "manager", "staff"):
        assert f'type="checkbox" name="roles" value="{role}"' in html
    assert "\u3000 销售部" in html


@pytest.mark.parametrize("role", ["tag_admin", "enterprise_admin"])
def test_hr_cannot_grant_a_role_above_theirs_in_the_admin(role):
    target = EmployeeFactory(userid="target", roles=["staff"])
    form = employee_form(userid="target", name=target.name, roles=["staff", role])
    response = logged_in(EmployeeFactory(roles=["hr"])).post(reverse("admin:org_employee_change", args=[target.pk]),
                                                             form)
    assert response.status_code == 200
    assert "只有企业管理员可以授予或取消这些角色" in response.content.decode()
    target = Employee.objects.get(pk=target.pk)
    assert target.roles == {"staff"}


def test_enterprise_admin_grants_tag_admin_in_the_admin(admin_user):
    target = EmployeeFactory(userid="target", roles=["staff"])
    form = employee_form(userid="target", name=target.name, roles=["tag_admin"])
    response = logged_in(admin_user).post(reverse("admin:org_employee_change", args=[target.pk]), form)
    assert response.status_code == 302
    assert Employee.objects.get(pk=target.pk).roles == {"tag_admin"}


def test_staff_and_managers_cannot_change_employees():
    target = EmployeeFactory(name="原名")
    for role in ("staff", "manager"):
        client = logged_in(EmployeeFactory(roles=[role]))
        response = client.post(reverse("admin:org_employee_change", args=[target.pk]), employee_form(
            userid=target.userid, name="改名"))
        assert response.status_code == 403
    assert Employee.objects.get(pk=target.pk).name == "原名"


def test_a_manager_reads_an_employee_page_without_raw_internals():
    """Read-only, a manager sees the roles by name; no password field, no "None", no {'enterprise_admin'}."""
    target = EmployeeFactory(name="系统管理员", roles=["enterprise_admin"])
    client = logged_in(EmployeeFactory(roles=["manager"]))
    response = client.get(reverse("admin:org_employee_change", args=[target.pk]))
    html = response.content.decode()
    assert response.status_code == 200
    assert "企业管理员" in html
    assert "enterprise_admin" not in html and "New password" not in html and "None" not in html


def test_employee_page_shows_registered_panels_and_tools(admin_user, monkeypatch):
    monkeypatch.setattr(org_admin, "_employee_panels", [])
    monkeypatch.setattr(org_admin, "_employee_tools", [])
    org_admin.register_employee_panel("客户概况", lambda request, emp: f"<p class='probe'>{emp.userid} 有 3 个客户</p>")
    org_admin.register_employee_tool("查看历史", "admin:org_employee_history")
    org_admin.register_employee_tool("未安装的功能", "admin:nothing_here")
    target = EmployeeFactory(userid="target")
    html = logged_in(admin_user).get(reverse("admin:org_employee_change", args=[target.pk])).content.decode()
    assert "客户概况" in html and "<p class='probe'>target 有 3 个客户</p>" in html
    assert reverse("admin:org_employee_history", args=[target.pk]) in html and "查看历史" in html
    assert "未安装的功能" not in html


def _messages(response) -> list[tuple[str, str]]:
    return [(m.level_tag, str(m)) for m in response.context["messages"]]


@pytest.fixture
def employee_with_history():
    from tests.factories import CustomerFactory

    emp = EmployeeFactory(userid="leaver", name="离职员工", roles=["staff"])
    CustomerFactory(followers=[emp])
    return emp


def _delete_view(emp) -> tuple[str, dict]:
    return reverse("admin:org_employee_delete", args=[emp.pk]), {"post": "yes"}


def _delete_action(emp) -> tuple[str, dict]:
    return reverse("admin:org_employee_changelist"), {"action": "delete_selected", "_selected_action": [emp.pk],
                                                      "post": "yes"}


@pytest.mark.parametrize("delete", [_delete_view, _delete_action], ids=["delete page", "delete action"])
def test_deleting_an_employee_with_customers_shows_only_the_refusal(employee_with_history, delete):
    emp = employee_with_history
    client = logged_in(EmployeeFactory(roles=["hr"]))
    url, data = delete(emp)
    shown = _messages(client.post(url, data, follow=True))
    assert [level for level, _text in shown] == ["error"], shown
    assert "还有客户或历史记录，不能删除" in shown[0][1]
    assert Employee.objects.filter(pk=emp.pk).exists()


def test_hr_deleting_an_enterprise_admin_sees_only_the_refusal():
    boss = EmployeeFactory(userid="boss", roles=["enterprise_admin"])
    client = logged_in(EmployeeFactory(roles=["hr"]))
    response = client.post(reverse("admin:org_employee_delete", args=[boss.pk]), {"post": "yes"}, follow=True)
    assert [level for level, _text in _messages(response)] == ["error"]
    assert Employee.objects.filter(pk=boss.pk).exists()


@pytest.mark.parametrize("delete", [_delete_view, _delete_action], ids=["delete page", "delete action"])
def test_an_employee_without_history_is_deleted_in_the_admin_with_the_usual_message(delete):
    fresh = EmployeeFactory(userid="fresh", roles=["staff"])
    client = logged_in(EmployeeFactory(roles=["hr"]))
    url, data = delete(fresh)
    confirm = client.post(url, {k: v for k, v in data.items() if k != "post"})
    assert confirm.status_code == 200 and "fresh" in confirm.content.decode()  # Django's confirmation page
    response = client.post(url, data, follow=True)
    assert [level for level, _text in _messages(response)] == ["success"]
    assert not Employee.objects.filter(pk=fresh.pk).exists()


# ---------------------------------------------------------------- department tree


def move(client, cut, pasted_on, position):
    return client.post(reverse("admin:org_department_changelist"),
                       {"cmd": "move_node", "cut_item": cut.pk, "pasted_on": pasted_on.pk, "position": position})


def test_department_tree_lists_branches_for_hr():
    hq = DepartmentFactory(name="总部")
    DepartmentFactory(name="华北区", parent=hq)
    response = logged_in(EmployeeFactory(roles=["hr"])).get(reverse("admin:org_department_changelist"))
    assert response.status_code == 200
    html = response.content.decode()
    assert "华北区" in html and "draggable-admin" in html
    assert "部门树只读" in html


def test_dragging_a_department_moves_it_and_keeps_order_consistent(admin_user):
    hq = DepartmentFactory(name="总部")
    north = DepartmentFactory(name="华北区", parent=hq, order=10)
    east = DepartmentFactory(name="华东区", parent=hq, order=20)
    south = DepartmentFactory(name="华南区", parent=hq, order=30)
    branch = DepartmentFactory(name="上海分公司", parent=north)
    client = logged_in(admin_user)

    assert "拖动行首的把手" in client.get(reverse("admin:org_department_changelist")).content.decode()
    assert move(client, south, north, "left").content == b"OK, moved."
    assert [(d.name, d.order) for d in hq.get_children()] == [("华南区", 10), ("华北区", 20), ("华东区", 30)]

    assert move(client, branch, east, "last-child").content == b"OK, moved."
    branch.refresh_from_db()
    assert branch.parent == east

    # A later save (mptt sorts siblings by `order`) keeps what was dragged.
    north.refresh_from_db()
    north.name = "华北大区"
    north.save()
    assert [d.name for d in hq.get_children()] == ["华南区", "华北大区", "华东区"]


def test_dragging_a_department_under_its_own_child_is_refused(admin_user):
    hq = DepartmentFactory(name="总部")
    north = DepartmentFactory(name="华北区", parent=hq)
    beijing = DepartmentFactory(name="北京分公司", parent=north)
    client = logged_in(admin_user)
    response = move(client, north, beijing, "last-child")
    assert response.content.startswith(b"FAIL")
    follow = client.get(reverse("admin:org_department_changelist")).content.decode()
    assert "不能把部门“华北区”移到它自己或它的下级部门" in follow
    north.refresh_from_db()
    assert north.parent == hq
    assert [d.name for d in hq.get_descendants()] == ["华北区", "北京分公司"]


def test_hr_cannot_drag_departments():
    hq = DepartmentFactory(name="总部")
    a, b = DepartmentFactory(name="甲", parent=hq), DepartmentFactory(name="乙", parent=hq)
    response = move(logged_in(EmployeeFactory(roles=["hr"])), b, a, "left")
    assert response.status_code == 403 or response.content.startswith(b"FAIL")
    assert [d.name for d in hq.get_children()] == ["甲", "乙"]


def test_department_edit_form_refuses_a_cycle_and_a_long_name(admin_user):
    hq = DepartmentFactory(name="总部")
    child = DepartmentFactory(name="华北区", parent=hq)
    client = logged_in(admin_user)
    url = reverse("admin:org_department_change", args=[hq.pk])
    cyc = client.post(url, {"name": "总部", "parent": child.pk, "order": 0, "external_id": ""})
    assert cyc.status_code == 200 and "errorlist" in cyc.content.decode()
    long = client.post(url, {"name": "长" * 200, "parent": "", "order": 0, "external_id": ""})
    assert long.status_code == 200 and "errorlist" in long.content.decode()
    hq.refresh_from_db()
    assert hq.name == "总部" and hq.parent is None


def test_department_add_through_the_admin(admin_user):
    hq = DepartmentFactory(name="总部")
    DepartmentFactory(name="华北区", parent=hq, order=10)
    response = logged_in(admin_user).post(reverse("admin:org_department_add"),
                                          {"name": "华西区", "parent": hq.pk, "order": 5, "external_id": "40"})
    assert response.status_code == 302
    assert [d.name for d in hq.get_children()] == ["华西区", "华北区"]


def test_a_department_in_use_cannot_be_deleted_in_the_admin(admin_user):
    dep = DepartmentFactory(name="销售部")
    EmployeeFactory(departments=[dep])
    client = logged_in(admin_user)
    page = client.get(reverse("admin:org_department_delete", args=[dep.pk])).content.decode()
    assert "销售部：仍有" in page
    client.post(reverse("admin:org_department_delete", args=[dep.pk]), {"post": "yes"})
    assert Department.objects.filter(pk=dep.pk).exists()


# ---------------------------------------------------------------- API clients


def test_creating_an_api_client_shows_the_key_once_and_it_works(admin_user, api):
    client = logged_in(admin_user)
    response = client.post(reverse("admin:org_apiclient_add"), {"name": "CRM", "read_only": ""}, follow=True)
    html = response.content.decode()
    key = re.search(r"id='tp-new-api-key'[^>]*>([^<]+)<", html).group(1)
    stored = ApiClient.objects.get(name="CRM")
    assert key not in (stored.key_hash, "") and stored.key_prefix == key[:10]
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    assert api.get("/api/v1/departments/").status_code == 200
    # shown once: the next page does not carry it
    assert key not in client.get(reverse("admin:org_apiclient_change", args=[stored.pk])).content.decode()

    client.post(reverse("admin:org_apiclient_changelist"), {"action": "revoke", "_selected_action": [stored.pk]})
    stored.refresh_from_db()
    assert stored.is_revoked
    assert api.get("/api/v1/departments/").status_code == 401


def test_hr_cannot_create_api_clients():
    response = logged_in(EmployeeFactory(roles=["hr"])).post(reverse("admin:org_apiclient_add"), {"name": "x"})
    assert response.status_code == 403
    assert not ApiClient.objects.exists()


def test_create_api_client_command_prints_the_key_once(api, capsys):
    call_command("create_api_client", "BI", "--read-only")
    key = capsys.readouterr().out.strip().splitlines()[-1].strip()
    client = ApiClient.objects.get(name="BI")
    assert client.read_only and client.key_prefix == key[:10]
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    assert api.get("/api/v1/employees/").status_code == 200
    assert api.post("/api/v1/departments/", {"name": "x"}, format="json").status_code == 403

    call_command("create_api_client", "CRM")
    assert not ApiClient.objects.get(name="CRM").read_only
    with pytest.raises(Exception, match="CRM"):
        call_command("create_api_client", "CRM")


def test_employee_list_filters_by_department_and_role_and_names_departments_with_their_branch():
    beijing, shanghai = DepartmentFactory(name="北京分公司"), DepartmentFactory(name="上海分公司")
    bj_sales = DepartmentFactory(name="销售部", parent=beijing)
    sh_sales = DepartmentFactory(name="销售部", parent=shanghai)
    EmployeeFactory(userid="bj1", departments=[bj_sales])
    EmployeeFactory(userid="sh1", departments=[sh_sales], roles=["manager"])
    client = logged_in(EmployeeFactory(userid="hr1", roles=["hr"]))
    url = reverse("admin:org_employee_changelist")
    html = client.get(url).content.decode()
    assert "北京分公司 / 销售部" in html and "上海分公司 / 销售部" in html  # the filter
    assert "北京分公司 销售部" in html  # the list column
    by_dep = client.get(url, {"department": bj_sales.pk}).content.decode()
    assert "bj1" in by_dep and "sh1" not in by_dep
    by_role = client.get(url, {"role": "manager"}).content.decode()
    assert "sh1" in by_role and "bj1" not in by_role


def test_departed_employee_page_says_so_and_shows_when(admin_user):
    leaver = EmployeeFactory(userid="leaver", status=EmployeeStatus.DEPARTED)
    html = logged_in(admin_user).get(reverse("admin:org_employee_change", args=[leaver.pk])).content.decode()
    assert "该成员已离职" in html and "离职时间" in html
    active = EmployeeFactory(userid="active")
    html = logged_in(admin_user).get(reverse("admin:org_employee_change", args=[active.pk])).content.decode()
    assert "该成员已离职" not in html
