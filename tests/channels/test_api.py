"""`channel-codes/` as API.md fixes it: fields, filters, who sees and manages which code, bad input
answered 400/409 naming the field with nothing changed, stats and QR images."""

from __future__ import annotations

import csv
import io

import pytest
from rest_framework.test import APIClient

from channels.models import ChannelCode
from tests.channels.conftest import add_through, make_code

pytestmark = pytest.mark.django_db

FIXED = {"id", "name", "state", "employees", "backup_employees", "daily_limit", "tags", "remark_template",
         "welcome_message", "skip_verify", "enabled", "added_count", "qr"}


def session(employee) -> APIClient:
    api = APIClient()
    api.force_login(employee)
    return api


def snapshot():
    return sorted(ChannelCode.objects.values_list("id", "name", "state", "enabled", "daily_limit"))


def test_create_read_update_delete(world, crm):
    w = world
    body = {"name": "2026车展", "state": "expo_2026", "employees": ["zhangsan", "lisi"],
            "backup_employees": ["boss"], "daily_limit": 20, "tags": [w.vip.pk, w.key_account.pk],
            "remark_template": "{channel}-{name}", "welcome_message": "欢迎！", "skip_verify": False}
    r = crm.post("/api/v1/channel-codes/", body, format="json")
    assert r.status_code == 201, r.content
    data = r.json()
    assert set(data) >= FIXED
    assert data["employees"] == ["lisi", "zhangsan"] and data["backup_employees"] == ["boss"]
    assert data["tags"] == sorted([w.vip.pk, w.key_account.pk]) and data["daily_limit"] == 20
    assert data["enabled"] is True and data["skip_verify"] is False and data["added_count"] == 0
    assert data["qr"]["png"].endswith(f"/api/v1/channel-codes/{data['id']}/qr.png")
    png = crm.get(data["qr"]["png"])
    assert png.status_code == 200 and png["Content-Type"] == "image/png" and png.content[:8] == b"\x89PNG\r\n\x1a\n"
    svg = crm.get(data["qr"]["svg"] + "?size=15")
    assert svg.status_code == 200 and b'width="150.0mm"' in svg.content

    r = crm.patch(f"/api/v1/channel-codes/{data['id']}/", {"daily_limit": None, "enabled": False}, format="json")
    assert r.status_code == 200 and r.json()["daily_limit"] is None and r.json()["enabled"] is False
    assert crm.delete(f"/api/v1/channel-codes/{data['id']}/").status_code == 204
    assert not ChannelCode.objects.exists()


def test_state_is_generated_when_omitted_and_frozen_once_a_customer_came_through(world, crm):
    w = world
    r = crm.post("/api/v1/channel-codes/", {"name": "门店", "employees": ["zhangsan"]}, format="json")
    state = r.json()["state"]
    assert r.status_code == 201 and 1 <= len(state) <= 30
    code_id = r.json()["id"]
    assert crm.patch(f"/api/v1/channel-codes/{code_id}/", {"state": "store_1"}, format="json").status_code == 200
    add_through("store_1", w.staff, "wmFROZEN")
    r = crm.patch(f"/api/v1/channel-codes/{code_id}/", {"state": "store_2"}, format="json")
    assert r.status_code == 409 and "state" in r.json()["error"]["details"]
    assert ChannelCode.objects.get(pk=code_id).state == "store_1"


@pytest.mark.parametrize(("body", "status", "field"), [
    ({"name": "x", "state": "a" * 31, "employees": ["zhangsan"]}, 400, "state"),
    ({"name": "x", "state": "有中文", "employees": ["zhangsan"]}, 400, "state"),
    ({"name": "x", "state": "taken", "employees": ["zhangsan"]}, 409, "state"),
    ({"name": "x", "employees": ["nobody"]}, 400, "employees"),
    ({"name": "x", "employees": ["departed"]}, 400, "employees"),
    ({"name": "x", "employees": []}, 400, "employees"),
    ({"name": "x"}, 400, "employees"),
    ({"name": "", "employees": ["zhangsan"]}, 400, "name"),
    ({"name": "x" * 31, "employees": ["zhangsan"]}, 400, "name"),
    ({"name": "x", "employees": ["zhangsan"], "backup_employees": ["nobody"]}, 400, "backup_employees"),
    ({"name": "x", "employees": ["zhangsan"], "tags": [999999]}, 400, "tags"),
    ({"name": "x", "employees": ["zhangsan"], "daily_limit": 0}, 400, "daily_limit"),
    ({"name": "x", "employees": ["zhangsan"], "daily_limit": 2**40}, 400, "daily_limit"),
    ({"name": "x", "employees": ["zhangsan"], "working_hours": {"7": [["09:00", "18:00"]]}}, 400, "working_hours"),
    ({"name": "x", "employees": ["zhangsan"], "working_hours": {"0": [["18:00", "09:00"]]}}, 400, "working_hours"),
    ({"name": "x", "employees": ["zhangsan"], "remark_template": "{phone}"}, 400, "remark_template"),
    ({"name": "x", "employees": ["zhangsan"], "rotation": "random"}, 400, "rotation"),
    ({"name": "x", "employees": ["zhangsan"], "enabled": "yes"}, 400, "enabled"),
])
def test_bad_input_names_the_field_and_changes_nothing(world, crm, body, status, field):
    from tests.factories import EmployeeFactory

    EmployeeFactory(userid="departed", status="departed")
    make_code(name="占用", state="taken", employees=[world.staff])
    before = snapshot()
    r = crm.post("/api/v1/channel-codes/", body, format="json")
    assert r.status_code == status, r.content
    assert field in r.json()["error"]["details"]
    assert snapshot() == before


def test_two_tags_of_a_single_choice_group_are_refused(world, crm):
    w = world
    r = crm.post("/api/v1/channel-codes/", {"name": "x", "employees": ["zhangsan"], "tags": [w.hot.pk, w.won.pk]},
                 format="json")
    assert r.status_code == 400 and "tags" in r.json()["error"]["details"]
    assert not ChannelCode.objects.exists()


def test_a_tag_the_creator_may_not_apply_is_refused(world):
    w = world
    api = session(w.manager)  # 售后服务 is scoped to 售后部: the sales manager does not see 保养到期
    body = {"name": "x", "employees": ["zhangsan"], "tags": [w.maintenance.pk], "department": w.sales.pk}
    r = api.post("/api/v1/channel-codes/", body, format="json")
    assert r.status_code == 400 and "tags" in r.json()["error"]["details"]
    body["tags"] = [w.vip.pk, w.key_account.pk]  # locked groups are usable on a code (automation)
    r = api.post("/api/v1/channel-codes/", body, format="json")
    assert r.status_code == 201, r.content
    assert r.json()["department"] == w.sales.pk and r.json()["owner"] == "boss"


def test_managers_manage_codes_of_their_departments_with_their_members(world):
    w = world
    api = session(w.manager)
    # lisi is in 销售一组, a sub-department of 销售部: not managed (exact departments, never inherited)
    r = api.post("/api/v1/channel-codes/", {"name": "x", "employees": ["lisi"], "department": w.sales.pk},
                 format="json")
    assert r.status_code == 400 and "employees" in r.json()["error"]["details"]
    r = api.post("/api/v1/channel-codes/", {"name": "x", "employees": ["zhangsan"], "department": w.after_sales.pk},
                 format="json")
    assert r.status_code == 400 and "department" in r.json()["error"]["details"]
    other = make_code(name="售后码", employees=[w.after_staff], department=w.after_sales.pk)
    mine = make_code(name="销售码", employees=[w.staff], department=w.sales.pk)
    assert [c["id"] for c in api.get("/api/v1/channel-codes/").json()["results"]] == [mine.pk]
    assert api.get(f"/api/v1/channel-codes/{other.pk}/").status_code == 404
    assert api.patch(f"/api/v1/channel-codes/{other.pk}/", {"name": "y"}, format="json").status_code == 404
    assert api.patch(f"/api/v1/channel-codes/{mine.pk}/", {"name": "销售码2"}, format="json").status_code == 200


def test_staff_see_the_codes_that_send_customers_to_them_read_only(world):
    w = world
    mine = make_code(name="我的", employees=[w.staff])
    backup = make_code(name="备用", employees=[w.after_staff], backup_employees=[w.staff])
    make_code(name="别人的", employees=[w.after_staff])
    api = session(w.staff)
    assert sorted(c["id"] for c in api.get("/api/v1/channel-codes/").json()["results"]) == sorted([mine.pk, backup.pk])
    assert api.patch(f"/api/v1/channel-codes/{mine.pk}/", {"name": "改"}, format="json").status_code == 403
    r = api.post("/api/v1/channel-codes/", {"name": "x", "employees": ["zhangsan"]}, format="json")
    assert r.status_code == 403
    assert session(w.hr).get("/api/v1/channel-codes/").json()["results"] == []
    assert ChannelCode.objects.get(pk=mine.pk).name == "我的"


def test_list_filters(world, crm):
    w = world
    a = make_code(name="车展", state="expo", employees=[w.staff], tags=[w.vip], department=w.sales.pk)
    b = make_code(name="门店", state="store", employees=[w.after_staff], backup_employees=[w.staff], enabled=False)

    def ids(query):
        r = crm.get(f"/api/v1/channel-codes/?{query}")
        assert r.status_code == 200, r.content
        return [c["id"] for c in r.json()["results"]]

    assert ids("q=车") == [a.pk] and ids("state=store") == [b.pk]
    assert ids("enabled=false") == [b.pk] and ids(f"tag={w.vip.pk}") == [a.pk]
    assert ids("receiver=zhangsan") == [b.pk, a.pk] and ids(f"department={w.sales.pk}") == [a.pk]
    r = crm.get("/api/v1/channel-codes/?department=abc")
    assert r.status_code == 400 and "department" in r.json()["error"]["details"]


def test_stats_per_day_and_employee_with_csv(world, crm):
    w = world
    code = make_code(state="expo", employees=[w.staff, w.team_staff])
    add_through("expo", w.staff, "wm1", added_at="2026-11-20T10:00:00+08:00")
    add_through("expo", w.staff, "wm2", added_at="2026-11-20T23:59:00+08:00")
    add_through("expo", w.team_staff, "wm3", added_at="2026-11-21T00:01:00+08:00")
    r = crm.get(f"/api/v1/channel-codes/{code.pk}/stats/?from=2026-11-19&to=2026-11-21")
    assert r.status_code == 200, r.content
    body = r.json()
    assert [(d["date"], d["added"], d["lost"]) for d in body["days"]] == [
        ("2026-11-19", 0, 0), ("2026-11-20", 2, 0), ("2026-11-21", 1, 0)]
    assert {e["employee"]: e["added"] for e in body["employees"]} == {"zhangsan": 2, "lisi": 1}
    assert body["customers_url"].endswith("/api/v1/customers/?state=expo")
    assert crm.get(body["customers_url"]).json()["results"].__len__() == 3
    r = crm.get(f"/api/v1/channel-codes/{code.pk}/stats/?from=2026-11-19&to=2026-11-21&export=csv")
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert rows[0] == ["日期", "新增", "流失", "仍在跟进"] and rows[2] == ["2026-11-20", "2", "0", "2"]
    for query, field in (("from=2026-13-01", "from"), ("from=2026-11-22&to=2026-11-21", "from"),
                         ("from=2020-01-01&to=2026-01-01", "from")):
        r = crm.get(f"/api/v1/channel-codes/{code.pk}/stats/?{query}")
        assert r.status_code == 400 and field in r.json()["error"]["details"], query


def test_qr_sizes_and_bad_size(world, crm):
    code = make_code(state="expo", employees=[world.staff])
    sizes = {}
    for cm in (8, 15, 50):
        r = crm.get(f"/api/v1/channel-codes/{code.pk}/qr.png?size={cm}&download=1")
        assert r.status_code == 200 and f'filename="expo-{cm}cm.png"' in r["Content-Disposition"]
        width = int.from_bytes(r.content[16:20], "big")  # the PNG's IHDR width
        sizes[cm] = width
        assert 0.95 * cm / 2.54 * 300 <= width <= cm / 2.54 * 300  # the print size at 300 dpi (whole modules)
    r = crm.get(f"/api/v1/channel-codes/{code.pk}/qr.png?size=9")
    assert r.status_code == 400 and "size" in r.json()["error"]["details"]


def test_landing_page_is_public_shows_nothing_private_and_lets_you_try(world, client):
    w = world
    code = make_code(name="车展", state="expo", employees=[w.staff], tags=[w.key_account], description="展台扫码",
                     welcome_message="欢迎光临")
    page = client.get("/c/expo/")
    html = page.content.decode()
    assert page.status_code == 200 and "车展" in html and "张三" in html and "<svg" in html
    assert "京津冀重点客户" not in html
    r = client.post("/c/expo/", {"nickname": "小王"})
    assert r.status_code == 200 and "欢迎光临" in r.content.decode()
    customer = w.staff.follow_relations.get(state="expo").customer
    assert customer.name == "小王" and customer.tags.filter(pk=w.key_account.pk).exists()
    assert code.adds.count() == 1
    assert client.post("/c/expo/", {"nickname": ""}).status_code == 400
    assert client.get("/c/nope/").status_code == 404
