"""Import/export of the taxonomy (ours and WeCom's get_corp_tag_list shape), merge and delete hooks,
and the demo data."""

from __future__ import annotations

import json

import pytest
from django.core.management import CommandError, call_command

from customers.models import Customer, TagEvent, Tagging
from org.actors import Actor
from tagportal.errors import NotAllowed, ValidationFailed
from tags import demo, services
from tags.models import PersonalTag, Tag, TagGroup
from tags.taxonomy_io import taxonomy_export, taxonomy_import
from tests.factories import EmployeeFactory, make_api_client, make_tag_group

pytestmark = pytest.mark.django_db

WECOM = {
    "errcode": 0, "errmsg": "ok",
    "tag_group": [
        {"group_id": "etGRP1", "group_name": "客户等级", "create_time": 1557838797, "order": 2, "deleted": False,
         "tag": [{"id": "etTAG1", "name": "潜在客户", "create_time": 1557838797, "order": 1, "deleted": False},
                 {"id": "etTAG2", "name": "VIP客户", "create_time": 1557838797, "order": 5, "deleted": False}]},
        {"group_id": "etGRP2", "group_name": "试听进度", "order": 9,
         "tag": [{"id": "etTAG3", "name": "未约课", "order": 0}, {"id": "etTAG4", "name": "旧标签", "deleted": True}]},
        {"group_id": "etGRP3", "group_name": "已删除的组", "order": 1, "deleted": True, "tag": []},
    ],
}


def snapshot():
    return (sorted(TagGroup.objects.values_list("pk", "name", "parent_id", "locked", "order")),
            sorted(Tag.objects.values_list("pk", "name", "group_id")),
            sorted(TagGroup.departments.through.objects.values_list("taggroup_id", "department_id")))


def test_export_import_round_trip_into_empty_database(admin_actor, company):
    top, _ = make_tag_group("行业", tags=["其他"])
    mid, _ = make_tag_group("制造业", parent=top, departments=[company.sales])
    make_tag_group("汽车", parent=mid, tags=["整车厂", "4S店集团"], locked=True)
    make_tag_group("华北", departments=[company.north], single_choice=True)
    data = json.loads(json.dumps(taxonomy_export()))
    Tag.objects.all().delete()
    TagGroup.objects.filter(level=2).delete()
    TagGroup.objects.filter(level=1).delete()
    TagGroup.objects.all().delete()
    result = taxonomy_import(actor=admin_actor, data=data)
    assert (result.groups_created, result.tags_created) == (4, 3)
    car = TagGroup.objects.get(name="汽车")
    assert (car.level, car.locked, car.parent.name, car.parent.parent.name) == (2, True, "制造业", "行业")
    assert list(TagGroup.objects.get(name="制造业").departments.all()) == [company.sales]
    assert TagGroup.objects.get(name="华北").single_choice
    # Importing the same file again changes nothing.
    before = snapshot()
    again = taxonomy_import(actor=admin_actor, data=data)
    assert (again.groups_created, again.tags_created, again.tags_unchanged) == (0, 0, 3)
    assert snapshot() == before


def test_wecom_corp_tag_list_shape(admin_actor):
    result = taxonomy_import(actor=admin_actor, data=WECOM)
    assert (result.groups_created, result.tags_created) == (2, 3)
    # WeCom: bigger order first. Ours: smaller first.
    assert list(TagGroup.objects.values_list("name", flat=True)) == ["试听进度", "客户等级"]
    level = TagGroup.objects.get(name="客户等级")
    assert level.external_id == "etGRP1"
    assert list(level.tags.order_by("order").values_list("name", "external_id")) == [
        ("VIP客户", "etTAG2"), ("潜在客户", "etTAG1")]
    assert not Tag.objects.filter(name="旧标签").exists()


@pytest.mark.parametrize("bad", [
    {"groups": [{"name": "ok", "departments": ["no-such-dept"]}]},
    {"groups": [{"name": "x" * 31}]},
    {"groups": [{"name": "a", "tags": [{"name": "t"}, {"name": " T "}]}]},
    {"groups": [{"name": "a"}, {"name": "A"}]},
    {"groups": [{"name": "a", "children": [{"name": "b", "children": [{"name": "c", "children": [{"name": "d"}]}]}]}]},
    {"groups": [{"name": "a", "order": "first"}]},
    {"something": []},
    [],
    {"tag_group": [{"group_name": "", "tag": []}]},
])
def test_bad_file_changes_nothing(admin_actor, company, bad):
    make_tag_group("现有组", tags=["现有标签"])
    before = snapshot()
    # A valid group first: it must not be created either.
    if isinstance(bad, dict) and "groups" in bad:
        bad = {"groups": [{"name": "新组", "tags": [{"name": "新标签"}]}, *bad["groups"]]}
    with pytest.raises(ValidationFailed) as err:
        taxonomy_import(actor=admin_actor, data=bad)
    assert "未做任何修改" in err.value.message or err.value.details
    assert snapshot() == before


def test_import_needs_a_taxonomy_manager(company):
    with pytest.raises(NotAllowed):
        taxonomy_import(actor=Actor(employee=company.staff), data={"groups": [{"name": "x"}]})
    assert not TagGroup.objects.exists()


def test_management_commands(tmp_path, admin_actor, capsys):
    make_tag_group("客户等级", tags=["VIP客户"])
    out = tmp_path / "t.json"
    call_command("export_taxonomy", str(out))
    assert json.loads(out.read_text())["groups"][0]["tags"][0]["name"] == "VIP客户"
    wecom = tmp_path / "wecom.json"
    wecom.write_text(json.dumps(WECOM, ensure_ascii=False))
    call_command("import_taxonomy", str(wecom))
    assert TagGroup.objects.filter(name="试听进度").exists()
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"groups": [{"name": ""}]}))
    with pytest.raises(CommandError):
        call_command("import_taxonomy", str(bad))


# ------------------------------------------------------------------ merge and delete hooks


def test_merge_repoints_taggings_without_duplicates_and_audits(admin_actor):
    _, (a, b) = make_tag_group("客户等级", tags=["VIP", "vip客户"])
    c1, c2 = Customer.objects.create(external_userid="w1", name="1"), Customer.objects.create(external_userid="w2",
                                                                                               name="2")
    Tagging.objects.bulk_create([Tagging(customer=c1, tag=a), Tagging(customer=c2, tag=a), Tagging(customer=c2, tag=b)])
    moved = services.tag_merge(actor=admin_actor, source=a, target=b)
    assert moved == 2
    assert not Tag.objects.filter(pk=a.pk).exists()
    assert sorted(Tagging.objects.values_list("customer_id", "tag_id")) == sorted([(c1.pk, b.pk), (c2.pk, b.pk)])
    events = set(TagEvent.objects.values_list("customer_id", "tag_name", "action", "actor_employee_id"))
    me = admin_actor.employee.pk
    assert events == {(c1.pk, "VIP", "remove", me), (c1.pk, "vip客户", "add", me), (c2.pk, "VIP", "remove", me)}


def test_merge_by_api_key_is_audited_as_api_and_refused_to_staff(company):
    _, (a, b) = make_tag_group("客户等级", tags=["A", "B"])
    c = Customer.objects.create(external_userid="w1", name="1")
    Tagging.objects.create(customer=c, tag=a)
    with pytest.raises(NotAllowed):
        services.tag_merge(actor=Actor(employee=company.staff), source=a, target=b)
    assert Tagging.objects.get().tag_id == a.pk
    client = make_api_client()[0]
    services.tag_merge(actor=Actor(api_client=client), source=a, target=b)
    assert set(TagEvent.objects.values_list("source", "actor_client_id")) == {("api", client.pk)}
    with pytest.raises(ValidationFailed):
        services.tag_merge(actor=Actor(api_client=client), source=b, target=b)


def test_tag_delete_removes_and_audits_taggings(admin_actor):
    _, (a,) = make_tag_group("客户等级", tags=["A"])
    c = Customer.objects.create(external_userid="w1", name="1")
    Tagging.objects.create(customer=c, tag=a)
    assert services.tag_delete(actor=admin_actor, tag=a) == 1
    assert not Tagging.objects.exists()
    assert TagEvent.objects.get().action == "remove"


def test_move_tag_keeps_its_customers(admin_actor):
    _, (a,) = make_tag_group("客户等级", tags=["A"])
    other, _ = make_tag_group("其他")
    c = Customer.objects.create(external_userid="w1", name="1")
    Tagging.objects.create(customer=c, tag=a)
    services.tag_move(actor=admin_actor, tag=a, group=other)
    assert Tagging.objects.get().tag.group == other


# ------------------------------------------------------------------ demo data


def test_demo_seed_builds_the_seed_taxonomy_idempotently(company):
    from tests.factories import DepartmentFactory

    tj = DepartmentFactory(name="天津分公司", parent=company.north)
    tj_after = DepartmentFactory(name="售后部", parent=tj)
    EmployeeFactory(roles=["staff"])
    demo.seed()
    before = snapshot(), sorted(PersonalTag.objects.values_list("owner_id", "name"))
    demo.seed()
    assert (snapshot(), sorted(PersonalTag.objects.values_list("owner_id", "name"))) == before
    assert set(TagGroup.objects.get(name="售后服务").departments.all()) == {company.after_sales, tj_after}
    north = TagGroup.objects.get(name="华北客户画像")
    assert north.locked and list(north.departments.all()) == [company.north]
    assert TagGroup.objects.get(name="转化阶段").single_choice
    assert TagGroup.objects.filter(level=2).exists()
    assert set(Tag.objects.filter(group__name="客户等级").values_list("name", flat=True)) >= {"VIP客户", "潜在客户"}
    assert PersonalTag.objects.filter(name="喜欢周末沟通").exists()
