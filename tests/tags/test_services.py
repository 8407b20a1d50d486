"""Rule 2 (tree, names, order), scopes and who may change definitions, through the services."""

from __future__ import annotations

import pytest

from org.actors import Actor
from tagportal.errors import NotAllowed, ValidationFailed
from tags import services
from tags.models import PersonalTag, Tag, TagGroup
from tests.factories import EmployeeFactory, make_api_client

pytestmark = pytest.mark.django_db


def tree_snapshot():
    return sorted(TagGroup.objects.values_list("pk", "name", "parent_id", "lft", "rght", "level", "tree_id"))


def test_create_trims_name_and_orders_siblings(admin_actor):
    a = services.tag_group_create(actor=admin_actor, name="  客户等级  ")
    b = services.tag_group_create(actor=admin_actor, name="试听进度")
    assert a.name == "客户等级"
    assert a.order < b.order
    t1 = services.tag_create(actor=admin_actor, group=a, name=" VIP客户 ")
    t2 = services.tag_create(actor=admin_actor, group=a, name="潜在客户")
    assert (t1.name, t1.order < t2.order) == ("VIP客户", True)


def test_three_levels_allowed_fourth_refused(admin_actor):
    l0 = services.tag_group_create(actor=admin_actor, name="行业")
    l1 = services.tag_group_create(actor=admin_actor, name="制造业", parent=l0)
    l2 = services.tag_group_create(actor=admin_actor, name="汽车", parent=l1)
    assert l2.level == 2
    before = tree_snapshot()
    with pytest.raises(ValidationFailed, match="3 级"):
        services.tag_group_create(actor=admin_actor, name="轿车", parent=l2)
    assert tree_snapshot() == before


@pytest.mark.parametrize("name", ["", "   ", "x" * 31, "\u3000\u3000"])
def test_bad_names_refused(admin_actor, name):
    with pytest.raises(ValidationFailed):
        services.tag_group_create(actor=admin_actor, name=name)
    assert not TagGroup.objects.exists()


def test_thirty_characters_is_fine_after_trimming(admin_actor):
    group = services.tag_group_create(actor=admin_actor, name=" " + "标" * 30 + " ")
    assert len(group.name) == 30


@pytest.mark.parametrize("dup", ["vip", " VIP ", "Vip"])
def test_duplicate_sibling_names_case_insensitive(admin_actor, dup):
    top = services.tag_group_create(actor=admin_actor, name="VIP")
    with pytest.raises(ValidationFailed, match="已有"):
        services.tag_group_create(actor=admin_actor, name=dup)
    # Same name under another parent is a different sibling set.
    services.tag_group_create(actor=admin_actor, name=dup, parent=top)
    services.tag_create(actor=admin_actor, group=top, name="Gold")
    with pytest.raises(ValidationFailed, match="已有"):
        services.tag_create(actor=admin_actor, group=top, name=" gold")
    assert TagGroup.objects.count() == 2
    assert Tag.objects.count() == 1


def test_rename_to_sibling_name_refused(admin_actor):
    services.tag_group_create(actor=admin_actor, name="A")
    b = services.tag_group_create(actor=admin_actor, name="B")
    with pytest.raises(ValidationFailed):
        services.tag_group_update(actor=admin_actor, group=b, name="a")
    b.refresh_from_db()
    assert b.name == "B"
    # Changing only the case of one's own name is fine.
    assert services.tag_group_update(actor=admin_actor, group=b, name="b").name == "b"


def test_move_into_own_descendant_is_a_cycle(admin_actor):
    a = services.tag_group_create(actor=admin_actor, name="A")
    b = services.tag_group_create(actor=admin_actor, name="B", parent=a)
    before = tree_snapshot()
    for target in (a, b):
        with pytest.raises(ValidationFailed, match="自己"):
            services.tag_group_move(actor=admin_actor, group=a, parent=target)
    assert tree_snapshot() == before


def test_move_respects_depth_of_whole_subtree(admin_actor):
    a = services.tag_group_create(actor=admin_actor, name="A")
    a1 = services.tag_group_create(actor=admin_actor, name="A1", parent=a)
    services.tag_group_create(actor=admin_actor, name="A2", parent=a1)
    b = services.tag_group_create(actor=admin_actor, name="B")
    b1 = services.tag_group_create(actor=admin_actor, name="B1", parent=b)
    before = tree_snapshot()
    with pytest.raises(ValidationFailed, match="3 级"):
        services.tag_group_move(actor=admin_actor, group=a, parent=b)  # A2 would be level 3
    with pytest.raises(ValidationFailed, match="3 级"):
        services.tag_group_move(actor=admin_actor, group=a1, parent=b1)  # A2 would be level 3
    assert tree_snapshot() == before
    moved = services.tag_group_move(actor=admin_actor, group=a1, parent=b)  # A1 level 1, A2 level 2: fine
    assert moved.get_descendants().get().level == 2


def test_move_keeps_tags_and_subtree(admin_actor):
    a = services.tag_group_create(actor=admin_actor, name="A")
    a1 = services.tag_group_create(actor=admin_actor, name="A1", parent=a)
    tag = services.tag_create(actor=admin_actor, group=a1, name="t")
    b = services.tag_group_create(actor=admin_actor, name="B")
    moved = services.tag_group_move(actor=admin_actor, group=a1, parent=b)
    assert (moved.parent_id, moved.level) == (b.pk, 1)
    assert Tag.objects.get(pk=tag.pk).group_id == a1.pk
    to_top = services.tag_group_move(actor=admin_actor, group=a1, parent=None)
    assert to_top.level == 0


def test_move_refuses_duplicate_name_at_destination(admin_actor):
    a = services.tag_group_create(actor=admin_actor, name="A")
    services.tag_group_create(actor=admin_actor, name="X", parent=a)
    x = services.tag_group_create(actor=admin_actor, name="x")
    with pytest.raises(ValidationFailed, match="已有"):
        services.tag_group_move(actor=admin_actor, group=x, parent=a)
    assert TagGroup.objects.get(pk=x.pk).parent_id is None


def test_reorder_changes_tree_order(admin_actor):
    groups = [services.tag_group_create(actor=admin_actor, name=n) for n in "ABC"]
    services.tag_groups_reorder(actor=admin_actor, parent=None, ordered_ids=[groups[2].pk, groups[0].pk, groups[1].pk])
    assert list(TagGroup.objects.values_list("name", flat=True)) == ["C", "A", "B"]
    services.tag_group_update(actor=admin_actor, group=TagGroup.objects.get(name="B"), order=-5)
    assert list(TagGroup.objects.values_list("name", flat=True)) == ["B", "C", "A"]
    with pytest.raises(ValidationFailed):
        services.tag_groups_reorder(actor=admin_actor, parent=None, ordered_ids=[groups[0].pk])


def test_tag_move_and_reorder(admin_actor):
    a = services.tag_group_create(actor=admin_actor, name="A")
    b = services.tag_group_create(actor=admin_actor, name="B")
    t1 = services.tag_create(actor=admin_actor, group=a, name="one")
    t2 = services.tag_create(actor=admin_actor, group=a, name="two")
    services.tags_reorder(actor=admin_actor, group=a, ordered_ids=[t2.pk, t1.pk])
    assert list(Tag.objects.filter(group=a).order_by("order").values_list("name", flat=True)) == ["two", "one"]
    services.tag_create(actor=admin_actor, group=b, name="ONE")
    with pytest.raises(ValidationFailed):
        services.tag_move(actor=admin_actor, tag=t1, group=b)
    moved = services.tag_move(actor=admin_actor, tag=t2, group=b)
    assert moved.group_id == b.pk


def test_scope_must_name_existing_departments(admin_actor, company):
    with pytest.raises(ValidationFailed, match="部门不存在") as err:
        services.tag_group_create(actor=admin_actor, name="售后服务", departments=[company.after_sales.pk, 999999])
    assert err.value.details == {"departments": [999999]}
    assert not TagGroup.objects.exists()
    group = services.tag_group_create(actor=admin_actor, name="售后服务", departments=[company.after_sales])
    with pytest.raises(ValidationFailed):
        services.tag_group_update(actor=admin_actor, group=group, departments=[424242], name="新名字")
    group.refresh_from_db()
    assert group.name == "售后服务"
    assert list(group.departments.all()) == [company.after_sales]


def test_add_sub_departments_stores_them_explicitly(admin_actor, company):
    group = services.tag_group_create(actor=admin_actor, name="华北", departments=[company.north],
                                      include_sub_departments=True)
    assert set(group.departments.all()) == {company.north, company.beijing, company.after_sales, company.sales}


@pytest.mark.parametrize("role", ["staff", "manager", "hr"])
def test_only_taxonomy_managers_change_definitions(role):
    actor = Actor(employee=EmployeeFactory(roles=[role]))
    with pytest.raises(NotAllowed):
        services.tag_group_create(actor=actor, name="A")
    assert not TagGroup.objects.exists()


def test_enterprise_admin_and_write_key_may_change_read_only_key_may_not():
    services.tag_group_create(actor=Actor(employee=EmployeeFactory(roles=["enterprise_admin"])), name="A")
    services.tag_group_create(actor=Actor(api_client=make_api_client("crm")[0]), name="B")
    with pytest.raises(NotAllowed, match="只读"):
        services.tag_group_create(actor=Actor(api_client=make_api_client("bi", read_only=True)[0]), name="C")
    assert sorted(TagGroup.objects.values_list("name", flat=True)) == ["A", "B"]


def test_delete_group_removes_subtree_and_tags(admin_actor):
    a = services.tag_group_create(actor=admin_actor, name="A")
    a1 = services.tag_group_create(actor=admin_actor, name="A1", parent=a)
    services.tag_create(actor=admin_actor, group=a1, name="t")
    keep = services.tag_group_create(actor=admin_actor, name="B")
    services.tag_group_delete(actor=admin_actor, group=a)
    assert list(TagGroup.objects.all()) == [keep]
    assert not Tag.objects.exists()
    before = tree_snapshot()
    TagGroup.objects.rebuild()
    assert tree_snapshot() == before


def test_personal_tags_belong_to_their_owner():
    owner = EmployeeFactory(roles=["staff"])
    other = EmployeeFactory(roles=["enterprise_admin"])
    tag = services.personal_tag_create(actor=Actor(employee=owner), name=" 喜欢周末沟通 ")
    assert (tag.owner, tag.name) == (owner, "喜欢周末沟通")
    with pytest.raises(ValidationFailed):
        services.personal_tag_create(actor=Actor(employee=owner), name="喜欢周末沟通")
    # Same name for someone else is their own tag.
    services.personal_tag_create(actor=Actor(employee=other), name="喜欢周末沟通")
    with pytest.raises(NotAllowed):
        services.personal_tag_update(actor=Actor(employee=other), personal_tag=tag, name="x")
    with pytest.raises(NotAllowed):
        services.personal_tag_delete(actor=Actor(employee=other), personal_tag=tag)
    with pytest.raises(ValidationFailed):
        services.personal_tag_create(actor=Actor(api_client=make_api_client()[0]), name="无主")
    assert PersonalTag.objects.get(pk=tag.pk).name == "喜欢周末沟通"
    services.personal_tag_delete(actor=Actor(employee=owner), personal_tag=tag)
    assert not PersonalTag.objects.filter(pk=tag.pk).exists()


def test_equal_orders_still_give_one_tree_order(admin_actor):
    """Found by the concurrency test: siblings with the same `order` made `rebuild()` reshuffle them.
    Names break ties now, so the tree the services build is the one `rebuild()` computes."""
    roots = [services.tag_group_create(actor=admin_actor, name=n, order=0) for n in ("乙", "甲", "B", "a")]
    for n in ("z", "y", "x"):
        services.tag_group_create(actor=admin_actor, name=n, parent=roots[0], order=5)
    services.tag_group_move(actor=admin_actor, group=TagGroup.objects.get(name="y"), parent=roots[2], order=0)
    services.tag_group_update(actor=admin_actor, group=TagGroup.objects.get(name="x"), name="w")
    before = tree_snapshot()
    TagGroup.objects.rebuild()
    assert tree_snapshot() == before


def test_move_and_rename_at_once_checks_the_new_name_at_the_destination(admin_actor):
    a = services.tag_group_create(actor=admin_actor, name="A")
    services.tag_group_create(actor=admin_actor, name="X", parent=a)
    x = services.tag_group_create(actor=admin_actor, name="X")
    moved = services.tag_group_update(actor=admin_actor, group=x, parent=a, name="Y", locked=True)
    assert (moved.parent_id, moved.name, moved.locked) == (a.pk, "Y", True)
    z = services.tag_group_create(actor=admin_actor, name="Z")
    with pytest.raises(ValidationFailed):
        services.tag_group_update(actor=admin_actor, group=z, parent=a, name="y")
    z.refresh_from_db()
    assert (z.parent_id, z.name) == (None, "Z")
