"""The taxonomy in the admin: the tree, forms with the services' errors, read-only for staff,
delete confirmations with counts, merge, drag and drop, health, the employee panel, and a
personal tag deleted from the admin (its removals are audited)."""

from __future__ import annotations

import json

import pytest

from customers.models import Customer, PersonalTagging, TagEvent, Tagging
from tags import services
from tags.models import PersonalTag, Tag, TagGroup
from tests.conftest import login
from tests.factories import EmployeeFactory, make_tag_group

pytestmark = pytest.mark.django_db

CHANGELIST = "/tags/taggroup/"
ADD = "/tags/taggroup/add/"


@pytest.fixture
def taxonomy(company):
    level, level_tags = make_tag_group("客户等级", tags=["VIP客户", "潜在客户"])
    after, after_tags = make_tag_group("售后服务", departments=[company.after_sales], tags=["保养到期"])
    north, north_tags = make_tag_group("华北客户画像", departments=[company.north], locked=True, tags=["政企客户"])
    return type("T", (), dict(level=level, after=after, north=north, level_tags=level_tags, after_tags=after_tags,
                              north_tags=north_tags))


def form_data(**overrides):
    data = {"name": "", "parent": "", "order": "", "locked": "", "single_choice": "",
            "tags-TOTAL_FORMS": "0", "tags-INITIAL_FORMS": "0", "tags-MIN_NUM_FORMS": "0",
            "tags-MAX_NUM_FORMS": "1000"}
    data.update(overrides)
    return {k: v for k, v in data.items() if v != "" or k.startswith("tags-")}


def test_tag_admin_sees_whole_tree_with_tools(tag_admin, taxonomy):
    r = login(tag_admin).get(CHANGELIST)
    body = r.content.decode()
    assert r.status_code == 200
    for name in ("客户等级", "售后服务", "华北客户画像", "政企客户"):
        assert name in body
    assert 'class="tp-tag tp-tag-locked"' not in body  # admins may apply locked tags: not greyed
    assert "导出 JSON" in body and "体检" in body


def test_staff_sees_only_visible_groups_read_only_locked_greyed(taxonomy, company):
    client = login(company.manager)  # 华北区: sees 客户等级 and the locked 华北客户画像
    body = client.get(CHANGELIST).content.decode()
    assert "华北客户画像" in body and "客户等级" in body
    assert "售后服务" not in body and "保养到期" not in body
    assert 'class="tp-tag tp-tag-locked"' in body
    assert ADD not in body
    # The change page is read-only; a POST is refused and changes nothing.
    assert client.get(f"/tags/taggroup/{taxonomy.north.pk}/change/").status_code == 200
    r = client.post(f"/tags/taggroup/{taxonomy.north.pk}/change/", form_data(name="改名"))
    assert r.status_code == 403
    assert TagGroup.objects.get(pk=taxonomy.north.pk).name == "华北客户画像"
    # An invisible group is as if it did not exist.
    r = client.get(f"/tags/taggroup/{taxonomy.after.pk}/change/")
    assert r.status_code == 302 and "售后服务" not in client.get(r.url).content.decode()
    assert client.get(ADD).status_code == 403


def test_staff_opens_a_tag_read_only(taxonomy, company):
    """A manager clicks a tag in 企业标签: a read-only page, not a server error; a POST changes nothing."""
    client = login(company.manager)
    tag = taxonomy.level_tags[0]
    r = client.get(f"/tags/tag/{tag.pk}/change/")
    assert r.status_code == 200
    assert "VIP客户" in r.content.decode()
    r = client.post(f"/tags/tag/{tag.pk}/change/", {"group": taxonomy.level.pk, "name": "改名", "order": "1"})
    assert r.status_code == 403
    assert Tag.objects.get(pk=tag.pk).name == "VIP客户"


def test_create_group_with_scope_and_sub_departments(tag_admin, company):
    r = login(tag_admin).post(ADD, form_data(name=" 华北 ", departments=[company.north.pk],
                                             include_sub_departments="on", locked="on"))
    assert r.status_code == 302, r.content.decode()[:3000]
    group = TagGroup.objects.get(name="华北")
    assert group.locked
    assert set(group.departments.all()) == {company.north, company.beijing, company.after_sales, company.sales}


def test_create_group_with_tags_inline(tag_admin):
    data = form_data(name="客户等级")
    data.update({"tags-TOTAL_FORMS": "2", "tags-0-name": " VIP客户 ", "tags-0-order": "1",
                 "tags-1-name": "潜在客户", "tags-1-order": "2"})
    r = login(tag_admin).post(ADD, data)
    assert r.status_code == 302
    assert list(Tag.objects.order_by("order").values_list("name", flat=True)) == ["VIP客户", "潜在客户"]


@pytest.mark.parametrize("overrides,message", [
    ({"name": "x" * 31}, "30"),
    ({"name": "   "}, ""),
    ({"name": "客户等级"}, "已有"),
    ({"name": "客户等级 ".upper()}, "已有"),
])
def test_group_form_errors_change_nothing(tag_admin, taxonomy, overrides, message):
    before = TagGroup.objects.count()
    r = login(tag_admin).post(ADD, form_data(**overrides))
    assert r.status_code == 200
    assert "errorlist" in r.content.decode()
    assert message in r.content.decode()
    assert TagGroup.objects.count() == before


def test_fourth_level_is_a_form_error(tag_admin):
    l0, _ = make_tag_group("L0")
    l1, _ = make_tag_group("L1", parent=l0)
    l2, _ = make_tag_group("L2", parent=l1)
    r = login(tag_admin).post(ADD, form_data(name="L3", parent=str(l2.pk)))
    assert r.status_code == 200
    assert not TagGroup.objects.filter(name="L3").exists()


def test_inline_duplicate_tag_names_are_form_errors(tag_admin, taxonomy):
    data = form_data(name="新组")
    data.update({"tags-TOTAL_FORMS": "2", "tags-0-name": "VIP", "tags-1-name": " vip "})
    r = login(tag_admin).post(ADD, data)
    assert r.status_code == 200 and "同组已有同名标签" in r.content.decode()
    assert not TagGroup.objects.filter(name="新组").exists()


def test_drag_and_drop_moves_through_the_service(tag_admin, taxonomy):
    client = login(tag_admin)
    r = client.post(CHANGELIST, {"cmd": "move_node", "cut_item": taxonomy.after.pk,
                                 "pasted_on": taxonomy.level.pk, "position": "last-child"})
    assert r.content == b"OK, moved."
    assert TagGroup.objects.get(pk=taxonomy.after.pk).parent_id == taxonomy.level.pk
    r = client.post(CHANGELIST, {"cmd": "move_node", "cut_item": taxonomy.north.pk,
                                 "pasted_on": taxonomy.level.pk, "position": "left"})
    assert r.content == b"OK, moved."
    assert list(TagGroup.objects.filter(level=0).values_list("name", flat=True)) == ["华北客户画像", "客户等级"]
    # A cycle is refused with a message and changes nothing.
    r = client.post(CHANGELIST, {"cmd": "move_node", "cut_item": taxonomy.level.pk,
                                 "pasted_on": taxonomy.after.pk, "position": "last-child"})
    assert r.content.startswith(b"FAIL")
    snapshot = sorted(TagGroup.objects.values_list("pk", "lft", "rght", "level", "tree_id"))
    TagGroup.objects.rebuild()
    assert sorted(TagGroup.objects.values_list("pk", "lft", "rght", "level", "tree_id")) == snapshot


def test_staff_cannot_drag(taxonomy, company):
    r = login(company.manager).post(CHANGELIST, {"cmd": "move_node", "cut_item": taxonomy.north.pk,
                                                 "pasted_on": taxonomy.level.pk, "position": "last-child"})
    assert r.content.startswith(b"FAIL") or r.status_code == 403
    assert TagGroup.objects.get(pk=taxonomy.north.pk).parent_id is None


def test_delete_confirmation_shows_customer_count(tag_admin, taxonomy):
    customers = [Customer.objects.create(external_userid=f"wm{i}", name=f"c{i}") for i in range(3)]
    Tagging.objects.bulk_create([Tagging(customer=c, tag=taxonomy.level_tags[0]) for c in customers])
    client = login(tag_admin)
    body = client.get(f"/tags/taggroup/{taxonomy.level.pk}/delete/").content.decode()
    assert '<strong class="tp-tagging-count">3</strong>' in body
    body = client.get(f"/tags/tag/{taxonomy.level_tags[0].pk}/delete/").content.decode()
    assert '<strong class="tp-tagging-count">3</strong>' in body
    r = client.post(f"/tags/taggroup/{taxonomy.level.pk}/delete/", {"post": "yes"})
    assert r.status_code == 302
    assert not TagGroup.objects.filter(pk=taxonomy.level.pk).exists()
    assert not Tagging.objects.exists()
    assert TagEvent.objects.filter(action="remove", tag_name="VIP客户").count() == 3


def test_merge_action_moves_customers_without_duplicates(tag_admin, taxonomy):
    a, b = taxonomy.level_tags
    c1, c2, c3 = (Customer.objects.create(external_userid=f"wm{i}", name=f"c{i}") for i in range(3))
    Tagging.objects.bulk_create([Tagging(customer=c1, tag=a), Tagging(customer=c2, tag=a), Tagging(customer=c2, tag=b),
                                 Tagging(customer=c3, tag=b)])
    client = login(tag_admin)
    r = client.post("/tags/tag/", {"action": "merge_tags", "_selected_action": [a.pk]})
    assert r.status_code == 200 and "合并" in r.content.decode()
    r = client.post("/tags/tag/", {"action": "merge_tags", "_selected_action": [a.pk], "apply": "1",
                                   "target": b.pk})
    assert r.status_code == 302
    assert not Tag.objects.filter(pk=a.pk).exists()
    assert sorted(Tagging.objects.filter(tag=b).values_list("customer_id", flat=True)) == [c1.pk, c2.pk, c3.pk]
    assert TagEvent.objects.filter(customer=c1, action="add", tag=b).exists()
    assert not TagEvent.objects.filter(customer=c2, action="add").exists()  # already had it


def test_health_page_warns_about_crowding_and_near_duplicates(tag_admin, company):
    for i in range(21):
        make_tag_group(f"组{i:02d}", departments=[company.after_sales] if i >= 15 else [])
    g, _ = make_tag_group("相似", tags=["VIP客户", "ＶＩＰ客户 ", "保养到期", "保养已到期", "高意向", "低意向"])
    body = login(tag_admin).get("/tags/taggroup/health/").content.decode()
    assert "北京分公司/售后部" in body  # 15 open + 6 scoped = 21 > 20
    assert "ＶＩＰ客户" in body and "保养已到期" in body
    assert "低意向" not in body


def test_export_and_import_round_trip_in_admin(tag_admin, taxonomy, company):
    client = login(tag_admin)
    exported = json.loads(client.get("/tags/taggroup/export/").content)
    by_name = {g["name"]: g for g in exported["groups"]}
    assert sorted(by_name) == sorted(["客户等级", "售后服务", "华北客户画像"])
    assert by_name["华北客户画像"]["departments"] == [company.north.external_id]
    exported["groups"].append({"name": "新组", "tags": [{"name": "新标签"}], "departments": ["5"]})
    r = client.post("/tags/taggroup/import/", {"text": json.dumps(exported)})
    assert r.status_code == 302
    assert TagGroup.objects.get(name="新组").departments.get() == company.after_sales
    bad = {"groups": [{"name": "坏组", "tags": [{"name": "x" * 31}], "departments": ["nope"]}]}
    r = client.post("/tags/taggroup/import/", {"text": json.dumps(bad)})
    assert r.status_code == 200 and "未做任何修改" in r.content.decode()
    assert not TagGroup.objects.filter(name="坏组").exists()


def test_employee_page_panel_shows_what_they_see(admin_user, taxonomy, company):
    body = login(admin_user).get(f"/org/employee/{company.staff.pk}/change/").content.decode()
    assert "可见的企业标签" in body
    panel = body[body.index("tp-visible-tags"):]
    assert "售后服务" in panel and "保养到期" in panel and "客户等级" in panel
    assert "华北客户画像" not in panel  # 售后部 is under 华北区, but scope is never inherited


def test_personal_tags_admin_shows_only_own(company):
    services.personal_tag_create(actor=_actor(company.staff), name="喜欢周末沟通")
    admin = EmployeeFactory(roles=["enterprise_admin"], is_superuser=True)
    assert "喜欢周末沟通" in login(company.staff).get("/tags/personaltag/").content.decode()
    assert "喜欢周末沟通" not in login(admin).get("/tags/personaltag/").content.decode()
    r = login(company.seller).post("/tags/personaltag/add/", {"name": " 价格敏感 "})
    assert r.status_code == 302
    assert company.seller.personal_tags.get().name == "价格敏感"


def _actor(employee):
    from org.actors import Actor

    return Actor(employee=employee)


def test_bulk_delete_action_goes_through_the_service(tag_admin, taxonomy):
    c = Customer.objects.create(external_userid="w1", name="1")
    Tagging.objects.create(customer=c, tag=taxonomy.after_tags[0])
    child, _ = make_tag_group("子组", parent=taxonomy.after, tags=["子标签"])
    client = login(tag_admin)
    ids = [taxonomy.after.pk, child.pk, taxonomy.level.pk]
    r = client.post(CHANGELIST, {"action": "delete_selected", "_selected_action": ids})
    assert r.status_code == 200 and "客户标签记录" in r.content.decode()
    r = client.post(CHANGELIST, {"action": "delete_selected", "_selected_action": ids, "post": "yes"})
    assert r.status_code == 302
    assert list(TagGroup.objects.values_list("name", flat=True)) == ["华北客户画像"]
    assert TagEvent.objects.filter(customer=c, action="remove").count() == 1
    before = sorted(TagGroup.objects.values_list("pk", "lft", "rght", "level", "tree_id"))
    TagGroup.objects.rebuild()
    assert sorted(TagGroup.objects.values_list("pk", "lft", "rght", "level", "tree_id")) == before


def test_inline_move_to_a_group_with_the_same_tag_name_is_a_form_error(tag_admin, taxonomy):
    other, _ = make_tag_group("其他", tags=["vip客户"])
    tag = taxonomy.level_tags[0]
    data = form_data(name="客户等级")
    data.update({"tags-TOTAL_FORMS": "1", "tags-INITIAL_FORMS": "1", "tags-0-id": str(tag.pk),
                 "tags-0-group": str(taxonomy.level.pk), "tags-0-name": "VIP客户", "tags-0-order": "0",
                 "tags-0-move_to": str(other.pk)})
    r = login(tag_admin).post(f"/tags/taggroup/{taxonomy.level.pk}/change/", data)
    assert r.status_code == 200 and "已有同名标签" in r.content.decode()
    assert Tag.objects.get(pk=tag.pk).group_id == taxonomy.level.pk
    data["tags-0-move_to"] = str(taxonomy.after.pk)
    r = login(tag_admin).post(f"/tags/taggroup/{taxonomy.level.pk}/change/", data)
    assert r.status_code == 302
    assert Tag.objects.get(pk=tag.pk).group_id == taxonomy.after.pk


# ---------------------------------------------------------------- personal tags


def test_deleting_a_personal_tag_in_the_admin_audits_it(company):
    owner = company.staff
    mine = PersonalTag.objects.create(owner=owner, name="爱喝茶")
    customer = Customer.objects.create(external_userid="wmP", name="p")
    PersonalTagging.objects.create(customer=customer, personal_tag=mine)
    r = login(owner).post(f"/tags/personaltag/{mine.pk}/delete/", {"post": "yes"})
    assert r.status_code == 302
    event = TagEvent.objects.get()
    assert (event.customer_id, event.action, event.tag_name, event.source, event.actor_employee_id) == (
        customer.pk, "remove", "爱喝茶", "manual", owner.pk)
