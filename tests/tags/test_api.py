"""`tag-groups/`, `tags/`, `personal-tags/` (API.md): shapes, rules, `employee=`, 403 vs 404."""

from __future__ import annotations

import pytest

from tags.models import PersonalTag, Tag, TagGroup
from tests.conftest import as_employee
from tests.factories import EmployeeFactory, make_tag_group

pytestmark = pytest.mark.django_db


def snapshot():
    return (
        sorted(TagGroup.objects.values_list("pk", "name", "parent_id", "lft", "rght", "level", "tree_id", "order")),
        sorted(TagGroup.departments.through.objects.values_list("taggroup_id", "department_id")),
        sorted(Tag.objects.values_list("pk", "name", "group_id", "order")),
    )


@pytest.fixture
def taxonomy(company):
    level, level_tags = make_tag_group("客户等级", tags=["VIP客户", "潜在客户"])
    after, after_tags = make_tag_group("售后服务", departments=[company.after_sales], tags=["保养到期", "延保服务"])
    north, north_tags = make_tag_group("华北客户画像", departments=[company.north], locked=True, tags=["政企客户"])
    stage, _ = make_tag_group("转化阶段", single_choice=True, tags=["高意向", "已成交"])
    return type("T", (), dict(level=level, after=after, north=north, stage=stage, after_tags=after_tags,
                              north_tags=north_tags, level_tags=level_tags))


def names(response):
    return [g["name"] for g in response.json()["results"]]


def test_group_fields(key_api, taxonomy, company):
    r = key_api.get("/api/v1/tag-groups/")
    assert r.status_code == 200
    assert r.json()["next"] is None
    by_name = {g["name"]: g for g in r.json()["results"]}
    north = by_name["华北客户画像"]
    assert north == {
        "id": taxonomy.north.pk, "name": "华北客户画像", "parent": None, "order": 0, "level": 0,
        "departments": [company.north.pk], "locked": True, "single_choice": False,
        "tags": [{"id": taxonomy.north_tags[0].pk, "name": "政企客户", "order": 0}], "external_id": None,
    }
    assert by_name["转化阶段"]["single_choice"] is True


@pytest.mark.parametrize("who,expected", [
    ("zhangsan", ["客户等级", "售后服务", "转化阶段"]),  # 售后部 staff
    ("lisi", ["客户等级", "转化阶段"]),  # 销售部 staff
    ("wangwu", ["客户等级", "华北客户画像", "转化阶段"]),  # manager in 华北区
])
def test_employee_param_lists_what_that_employee_sees(key_api, taxonomy, who, expected):
    r = key_api.get("/api/v1/tag-groups/", {"employee": who})
    assert sorted(names(r)) == sorted(expected)
    tags = key_api.get("/api/v1/tags/", {"employee": who}).json()["results"]
    visible_group_ids = {g["id"] for g in r.json()["results"]}
    assert {t["group"] for t in tags} == visible_group_ids


def test_tag_admin_lists_everything_but_usable_only_visible(key_api, taxonomy, company):
    EmployeeFactory(userid="ta", roles=["tag_admin"], departments=[company.sales])
    assert len(names(key_api.get("/api/v1/tag-groups/", {"employee": "ta"}))) == 4
    assert sorted(names(key_api.get("/api/v1/tag-groups/", {"employee": "ta", "usable": "true"}))) == [
        "客户等级", "转化阶段"]


def test_invisible_objects_are_404_for_staff(key_api, taxonomy):
    url = f"/api/v1/tag-groups/{taxonomy.after.pk}/"
    responses = [
        key_api.get(url, {"employee": "lisi"}),
        key_api.patch(url, {"employee": "lisi", "name": "x"}, format="json"),
        key_api.delete(url + "?employee=lisi"),
        key_api.post(f"/api/v1/tags/{taxonomy.level_tags[0].pk}/merge/",
                     {"employee": "lisi", "target": taxonomy.after_tags[0].pk}, format="json"),
    ]
    for r in responses:
        assert r.status_code == 404, r.json()
        assert r.json()["error"]["code"] == "not_found"
    assert TagGroup.objects.get(pk=taxonomy.after.pk).name == "售后服务"
    tag = taxonomy.after_tags[0]
    assert key_api.get(f"/api/v1/tags/{tag.pk}/?employee=lisi").status_code == 404
    assert key_api.get(f"/api/v1/tags/{tag.pk}/?employee=zhangsan").status_code == 200


def test_visible_but_not_admin_is_403_and_nothing_changes(key_api, taxonomy):
    before = snapshot()
    r = key_api.patch(f"/api/v1/tag-groups/{taxonomy.level.pk}/", {"employee": "lisi", "name": "改名"}, format="json")
    assert r.status_code == 403
    assert "标签管理员" in r.json()["error"]["message"]
    r = key_api.post("/api/v1/tag-groups/", {"employee": "wangwu", "name": "新组"}, format="json")
    assert r.status_code == 403
    r = key_api.post("/api/v1/tags/", {"employee": "lisi", "group": taxonomy.level.pk, "name": "x"}, format="json")
    assert r.status_code == 403
    assert key_api.delete(f"/api/v1/tags/{taxonomy.level_tags[0].pk}/?employee=lisi").status_code == 403
    assert snapshot() == before


def test_read_only_key_cannot_write(read_only_api, taxonomy):
    before = snapshot()
    assert read_only_api.get("/api/v1/tag-groups/").status_code == 200
    r = read_only_api.post("/api/v1/tag-groups/", {"name": "新组"}, format="json")
    assert r.status_code == 403
    message = r.json()["error"]["message"]
    assert "只读" in message or "read-only" in message  # Chinese first (i18n helper), English before
    assert read_only_api.delete(f"/api/v1/tag-groups/{taxonomy.level.pk}/").status_code == 403
    assert snapshot() == before


def test_create_nested_group_with_scope_and_sub_departments(key_api, company):
    r = key_api.post("/api/v1/tag-groups/", {"name": " 华北 ", "departments": [company.north.pk],
                                             "include_sub_departments": True, "locked": True}, format="json")
    assert r.status_code == 201, r.json()
    body = r.json()
    assert body["name"] == "华北"
    assert body["locked"] is True
    assert sorted(body["departments"]) == sorted(
        [company.north.pk, company.beijing.pk, company.after_sales.pk, company.sales.pk])
    child = key_api.post("/api/v1/tag-groups/", {"name": "子组", "parent": body["id"]}, format="json").json()
    assert (child["parent"], child["level"]) == (body["id"], 1)
    tag = key_api.post("/api/v1/tags/", {"group": child["id"], "name": "标签"}, format="json")
    assert tag.status_code == 201
    assert tag.json()["group"] == child["id"]


@pytest.mark.parametrize("payload,fragment", [
    ({"name": ""}, "不能为空"),
    ({"name": "   "}, "不能为空"),
    ({"name": "x" * 31}, "30"),
    ({"name": "客户等级"}, "已有"),
    ({"name": " 客户等级 "}, "已有"),
    ({"name": "ok", "departments": [987654]}, "部门不存在"),
    ({"name": "ok", "parent": 987654}, "不存在"),
])
def test_bad_input_is_400_and_changes_nothing(key_api, taxonomy, payload, fragment):
    before = snapshot()
    r = key_api.post("/api/v1/tag-groups/", payload, format="json")
    assert r.status_code == 400, r.json()
    assert fragment in r.json()["error"]["message"]
    assert snapshot() == before


def test_fourth_level_and_cycle_are_400(key_api):
    ids = []
    parent = None
    for name in ("L0", "L1", "L2"):
        ids.append(key_api.post("/api/v1/tag-groups/", {"name": name, "parent": parent}, format="json").json()["id"])
        parent = ids[-1]
    before = snapshot()
    r = key_api.post("/api/v1/tag-groups/", {"name": "L3", "parent": ids[2]}, format="json")
    assert (r.status_code, r.json()["error"]["code"]) == (400, "too_deep")
    r = key_api.patch(f"/api/v1/tag-groups/{ids[0]}/", {"parent": ids[2]}, format="json")
    assert (r.status_code, r.json()["error"]["code"]) == (400, "cycle")
    assert snapshot() == before
    r = key_api.patch(f"/api/v1/tag-groups/{ids[2]}/", {"parent": None}, format="json")
    assert (r.status_code, r.json()["level"]) == (200, 0)


def test_duplicate_tag_name_case_insensitive(key_api, taxonomy):
    r = key_api.post("/api/v1/tags/", {"group": taxonomy.level.pk, "name": " vip客户 "}, format="json")
    assert r.status_code == 400
    assert Tag.objects.filter(group=taxonomy.level).count() == 2


def test_tag_admin_session_manages_groups_outside_own_scope(taxonomy, company):
    admin = EmployeeFactory(roles=["tag_admin"], departments=[company.sales])
    client = as_employee(admin)
    r = client.patch(f"/api/v1/tag-groups/{taxonomy.after.pk}/", {"name": "售后"}, format="json")
    assert r.status_code == 200
    assert TagGroup.objects.get(pk=taxonomy.after.pk).name == "售后"


def test_move_tag_to_another_group(key_api, taxonomy):
    tag = taxonomy.level_tags[0]
    r = key_api.patch(f"/api/v1/tags/{tag.pk}/", {"group": taxonomy.stage.pk}, format="json")
    assert (r.status_code, r.json()["group"]) == (200, taxonomy.stage.pk)


def test_delete_group_through_api(key_api, taxonomy):
    assert key_api.delete(f"/api/v1/tag-groups/{taxonomy.stage.pk}/").status_code == 204
    assert not TagGroup.objects.filter(pk=taxonomy.stage.pk).exists()


def test_personal_tags_are_their_owners_alone(key_api, company):
    r = key_api.post("/api/v1/personal-tags/", {"employee": "zhangsan", "name": "喜欢周末沟通"}, format="json")
    assert r.status_code == 201
    body = r.json()
    assert (body["owner"], body["name"]) == ("zhangsan", "喜欢周末沟通")
    assert [t["name"] for t in key_api.get("/api/v1/personal-tags/?employee=zhangsan").json()["results"]] == [
        "喜欢周末沟通"]
    # Nobody else sees it: not another employee, not an admin, not the enterprise-level key.
    admin = EmployeeFactory(userid="boss", roles=["enterprise_admin"])
    assert key_api.get("/api/v1/personal-tags/?employee=lisi").json()["results"] == []
    assert key_api.get("/api/v1/personal-tags/?employee=boss").json()["results"] == []
    assert key_api.get("/api/v1/personal-tags/").json()["results"] == []
    assert as_employee(admin).get(f"/api/v1/personal-tags/{body['id']}/").status_code == 404
    assert key_api.patch(f"/api/v1/personal-tags/{body['id']}/?employee=lisi", {"name": "x"},
                         format="json").status_code == 404
    # Enterprise-level creation has no owner: 400 with a message.
    r = key_api.post("/api/v1/personal-tags/", {"name": "无主"}, format="json")
    assert r.status_code == 400
    # The owner renames and deletes.
    owner = as_employee(company.staff)
    assert owner.patch(f"/api/v1/personal-tags/{body['id']}/", {"name": "周末"}, format="json").json()["name"] == "周末"
    assert owner.delete(f"/api/v1/personal-tags/{body['id']}/").status_code == 204
    assert not PersonalTag.objects.exists()


def test_staff_session_sees_own_scope(taxonomy, company):
    r = as_employee(company.seller).get("/api/v1/tag-groups/")
    assert sorted(names(r)) == ["客户等级", "转化阶段"]
    assert as_employee(company.seller).get(f"/api/v1/tag-groups/{taxonomy.after.pk}/").status_code == 404


def test_pagination_follows_next_in_tree_order(key_api):
    top, _ = make_tag_group("A")
    make_tag_group("A1", parent=top)
    make_tag_group("B")
    make_tag_group("C")
    seen, url = [], "/api/v1/tag-groups/?page_size=2"
    while url:
        body = key_api.get(url).json()
        seen += [g["name"] for g in body["results"]]
        url = body["next"]
    assert seen == ["A", "A1", "B", "C"]


@pytest.mark.parametrize("role,count", [("enterprise_admin", 4), ("hr", 2)])
def test_enterprise_admin_sees_everything_hr_only_visible(key_api, taxonomy, company, role, count):
    EmployeeFactory(userid="who", roles=[role], departments=[company.sales])
    assert len(names(key_api.get("/api/v1/tag-groups/", {"employee": "who"}))) == count


def test_patch_scope_clears_and_adds_sub_departments(key_api, taxonomy, company):
    url = f"/api/v1/tag-groups/{taxonomy.north.pk}/"
    r = key_api.patch(url, {"departments": [company.beijing.pk], "include_sub_departments": True}, format="json")
    assert sorted(r.json()["departments"]) == sorted([company.beijing.pk, company.after_sales.pk, company.sales.pk])
    r = key_api.patch(url, {"departments": []}, format="json")
    assert r.json()["departments"] == []
    assert key_api.patch(url, {"locked": False}, format="json").json()["departments"] == []
