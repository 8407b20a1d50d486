"""Rough edges a new user hit: names that only differ in width, case or spaces count as the same
name (as the health page says); control characters are refused; the 单选 refusal is worded for a
group that is not single-choice yet and sits next to its checkbox; the list's scope column says
when a sub-group follows its parent; "移到其他组" never offers the tag's own group; a tag row of
spaces is a form error."""

from __future__ import annotations

import pytest

from customers.models import Customer, Tagging
from org.actors import Actor
from tagportal.errors import Conflict, ValidationFailed
from tags import services
from tags.models import PersonalTag, Tag, TagGroup
from tags.taxonomy_io import taxonomy_import
from tests.conftest import login
from tests.factories import EmployeeFactory, make_tag_group

pytestmark = pytest.mark.django_db

CHANGELIST = "/tags/taggroup/"
ADD = "/tags/taggroup/add/"


def formset(total=0, initial=0):
    return {"tags-TOTAL_FORMS": str(total), "tags-INITIAL_FORMS": str(initial), "tags-MIN_NUM_FORMS": "0",
            "tags-MAX_NUM_FORMS": "1000"}


# ---------------------------------------------------------------- 1. same name after folding


@pytest.mark.parametrize("existing,new", [("ABC", "ＡＢＣ"), ("VIP客户", "ＶＩＰ客户"), ("VIP客户", "vip 客户"),
                                          ("VIP客户", "Ｖｉｐ　客户")])
def test_tag_width_case_and_space_variants_are_duplicates(admin_actor, existing, new):
    group = services.tag_group_create(actor=admin_actor, name="客户等级")
    services.tag_create(actor=admin_actor, group=group, name=existing)
    with pytest.raises(ValidationFailed) as exc:
        services.tag_create(actor=admin_actor, group=group, name=new)
    assert f"“{existing}”" in exc.value.message and "全角/半角" in exc.value.message
    assert list(Tag.objects.values_list("name", flat=True)) == [existing]


def test_rename_and_move_refuse_a_folded_duplicate(admin_actor):
    a = services.tag_group_create(actor=admin_actor, name="甲")
    b = services.tag_group_create(actor=admin_actor, name="乙")
    services.tag_create(actor=admin_actor, group=a, name="VIP客户")
    other = services.tag_create(actor=admin_actor, group=a, name="普通")
    moving = services.tag_create(actor=admin_actor, group=b, name="ｖｉｐ客户")
    with pytest.raises(ValidationFailed, match="VIP客户"):
        services.tag_update(actor=admin_actor, tag=other, name="ＶＩＰ 客户")
    with pytest.raises(ValidationFailed, match="VIP客户"):
        services.tag_move(actor=admin_actor, tag=moving, group=a)
    assert sorted(Tag.objects.values_list("name", "group_id")) == sorted(
        [("VIP客户", a.pk), ("普通", a.pk), ("ｖｉｐ客户", b.pk)])
    # renaming a tag to a variant of its own name is fine
    assert services.tag_update(actor=admin_actor, tag=other, name="普通 ").name == "普通"


def test_group_siblings_compare_folded(admin_actor):
    top = services.tag_group_create(actor=admin_actor, name="ABC")
    with pytest.raises(ValidationFailed, match="“ABC”"):
        services.tag_group_create(actor=admin_actor, name="ａｂｃ")
    child = services.tag_group_create(actor=admin_actor, name="Ｘ Y", parent=top)
    other = services.tag_group_create(actor=admin_actor, name="xy")
    with pytest.raises(ValidationFailed, match="“Ｘ Y”"):
        services.tag_group_move(actor=admin_actor, group=other, parent=top)
    with pytest.raises(ValidationFailed, match="“ABC”"):
        services.tag_group_update(actor=admin_actor, group=other, name="A B C")
    assert TagGroup.objects.get(pk=other.pk).parent_id is None
    assert child.parent_id == top.pk


def test_personal_tags_per_owner_compare_folded(db):
    owner = EmployeeFactory(userid="p1")
    actor = Actor(employee=owner)
    first = services.personal_tag_create(actor=actor, name="价格敏感")
    with pytest.raises(ValidationFailed, match="“价格敏感”"):
        services.personal_tag_create(actor=actor, name="价格 敏感")
    tag, created = services.personal_tag_get_or_create(actor=actor, name="价格　敏感")
    assert (tag.pk, created) == (first.pk, False)
    assert PersonalTag.objects.count() == 1
    # another owner may use the same name
    services.personal_tag_create(actor=Actor(employee=EmployeeFactory(userid="p2")), name="价格敏感")


def test_import_matches_folded_names_and_refuses_folded_duplicates_in_file(admin_actor):
    group = services.tag_group_create(actor=admin_actor, name="VIP客户分层")
    services.tag_create(actor=admin_actor, group=group, name="VIP客户")
    data = {"groups": [{"name": "ｖｉｐ客户分层", "tags": [{"name": "vip 客户"}]}]}
    r = taxonomy_import(actor=admin_actor, data=data)
    assert (r.groups_created, r.tags_created, r.tags_unchanged) == (0, 0, 1)
    assert TagGroup.objects.count() == 1 and Tag.objects.count() == 1
    with pytest.raises(ValidationFailed, match="组内重复"):
        taxonomy_import(actor=admin_actor, data={"groups": [{"name": "新", "tags": ["ABC", "ＡＢＣ"]}]})
    assert not TagGroup.objects.filter(name="新").exists()


def test_inner_whitespace_collapsed_and_control_characters_refused(admin_actor):
    group = services.tag_group_create(actor=admin_actor, name="  客户   等级 ")
    assert group.name == "客户 等级"
    for bad in ("客户\t等级", "客户\n等级", "a\x00b"):
        with pytest.raises(ValidationFailed, match="控制字符"):
            services.tag_create(actor=admin_actor, group=group, name=bad)
    assert Tag.objects.count() == 0


def test_api_folded_duplicate_and_control_character_are_400(key_api):
    group, _ = make_tag_group("客户等级", tags=["VIP客户"])
    r = key_api.post("/api/v1/tags/", {"group": group.pk, "name": "ＶＩＰ 客户"}, format="json")
    assert r.status_code == 400 and "VIP客户" in r.json()["error"]["message"]
    r = key_api.post("/api/v1/tags/", {"group": group.pk, "name": "新\t标签"}, format="json")
    assert r.status_code == 400 and "控制字符" in r.json()["error"]["message"]
    r = key_api.post("/api/v1/tag-groups/", {"name": "客户 等级"}, format="json")
    assert r.status_code == 400
    assert Tag.objects.count() == 1 and TagGroup.objects.count() == 1


def test_admin_forms_show_folded_duplicates(tag_admin):
    group, _ = make_tag_group("客户等级", tags=["VIP客户"])
    client = login(tag_admin)
    r = client.post(ADD, {"name": "ｋｅｈｕ", **formset()})
    assert r.status_code == 302
    r = client.post(ADD, {"name": "Ke Hu", **formset()})
    assert r.status_code == 200 and "“ｋｅｈｕ”" in r.context["adminform"].form.errors["name"][0]
    r = client.post("/tags/tag/add/", {"group": group.pk, "name": "vip 客户", "order": ""})
    assert r.status_code == 200 and "“VIP客户”" in r.context["adminform"].form.errors["name"][0]
    data = {"name": "新组", **formset(2), "tags-0-name": "ABC", "tags-1-name": "ＡＢＣ"}
    r = client.post(ADD, data)
    assert r.status_code == 200 and "同组已有同名标签“ABC”" in r.content.decode()
    assert Tag.objects.count() == 1 and TagGroup.objects.count() == 2


# ---------------------------------------------------------------- 2. turning 单选 on


@pytest.fixture
def two_held(db):
    level, (vip, plain) = make_tag_group("客户等级", tags=["VIP客户", "普通客户"])
    customers = [Customer.objects.create(external_userid=f"wm{i}", name=f"c{i}") for i in range(3)]
    Tagging.objects.bulk_create([Tagging(customer=c, tag=t) for c in customers[:2] for t in (vip, plain)]
                                + [Tagging(customer=customers[2], tag=vip)])
    return level


def test_single_choice_refusal_is_worded_for_a_group_not_yet_single(admin_actor, two_held):
    with pytest.raises(Conflict) as exc:
        services.tag_group_update(actor=admin_actor, group=two_held, single_choice=True)
    assert "有 2 位客户同时有" in exc.value.message and "不能设为单选" in exc.value.message
    assert "是单选组" not in exc.value.message
    assert exc.value.details["customers"] == 2
    assert not TagGroup.objects.get(pk=two_held.pk).single_choice


def test_single_choice_refusal_api_409_and_admin_field_error(key_api, tag_admin, two_held):
    r = key_api.patch(f"/api/v1/tag-groups/{two_held.pk}/", {"single_choice": True}, format="json")
    assert r.status_code == 409 and r.json()["error"]["details"]["customers"] == 2
    r = login(tag_admin).post(f"/tags/taggroup/{two_held.pk}/change/",
                              {"name": "客户等级", "single_choice": "on", **formset()})
    assert r.status_code == 200
    errors = r.context["adminform"].form.errors
    assert list(errors) == ["single_choice"] and "不能设为单选" in errors["single_choice"][0]
    assert not TagGroup.objects.get(pk=two_held.pk).single_choice


# ---------------------------------------------------------------- 3. the group list and the tag rows


def test_scope_column_says_sub_group_follows_scoped_parent(tag_admin, company):
    scoped, _ = make_tag_group("售后服务", departments=[company.after_sales])
    make_tag_group("保养", parent=scoped)
    open_parent, _ = make_tag_group("客户等级")
    make_tag_group("细分", parent=open_parent)
    r = login(tag_admin).get(CHANGELIST)
    rows = {row.split("</div>")[0].rsplit(">", 1)[-1]: row for row in r.content.decode().split('class="tp-group"')[1:]}
    assert "随上级" in rows["保养"].split("</tr>")[0]
    assert "随上级" not in rows["细分"].split("</tr>")[0] and "全员" in rows["细分"].split("</tr>")[0]
    assert "随上级" not in rows["客户等级"].split("</tr>")[0]


def test_move_to_does_not_offer_the_tags_own_group(tag_admin):
    group, (vip,) = make_tag_group("客户等级", tags=["VIP客户"])
    other, _ = make_tag_group("售后服务")
    r = login(tag_admin).get(f"/tags/taggroup/{group.pk}/change/")
    formset_ = r.context["inline_admin_formsets"][0].formset
    for form in [*formset_.forms, formset_.empty_form]:
        offered = set(form.fields["move_to"].queryset.values_list("pk", flat=True))
        assert group.pk not in offered and other.pk in offered


def test_tag_row_of_only_spaces_is_a_form_error(tag_admin):
    group, (vip,) = make_tag_group("客户等级", tags=["VIP客户"])
    data = {"name": "客户等级", **formset(2, 1), "tags-0-id": vip.pk, "tags-0-group": group.pk,
            "tags-0-name": "VIP客户", "tags-0-order": "0", "tags-1-group": group.pk, "tags-1-name": "   "}
    r = login(tag_admin).post(f"/tags/taggroup/{group.pk}/change/", data)
    assert r.status_code == 200
    assert "名称不能为空" in r.content.decode()
    assert list(Tag.objects.values_list("name", flat=True)) == ["VIP客户"]
