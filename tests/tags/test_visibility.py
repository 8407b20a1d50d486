"""Rules 3 and 4: scope is exact, never inherited; nested groups narrow. One selector decides."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from org.models import Department, Employee
from tags.models import Tag, TagGroup
from tags.selectors import visible_tag_groups, visible_tags
from tests.factories import EmployeeFactory, make_tag_group

pytestmark = pytest.mark.django_db


def names(qs):
    return sorted(qs.values_list("name", flat=True))


def test_empty_scope_is_everyone(company):
    make_tag_group("客户等级", tags=["VIP客户"])
    for who in (company.staff, company.seller, company.manager, EmployeeFactory(roles=["staff"])):
        assert names(visible_tag_groups(who)) == ["客户等级"]


def test_scope_is_exact_not_inherited_by_sub_departments(company):
    make_tag_group("华北客户画像", departments=[company.north])
    make_tag_group("售后服务", departments=[company.after_sales])
    assert names(visible_tag_groups(company.manager)) == ["华北客户画像"]  # member of 华北区 itself
    assert names(visible_tag_groups(company.staff)) == ["售后服务"]  # 售后部 is under 华北区: inherits nothing
    assert names(visible_tag_groups(company.seller)) == []  # 销售部: neither


def test_parent_department_does_not_see_sub_department_groups(company):
    make_tag_group("售后服务", departments=[company.after_sales])
    assert names(visible_tag_groups(company.manager)) == []  # 华北区 member, managing 北京分公司


def test_nested_groups_narrow(company):
    outer, _ = make_tag_group("华北", departments=[company.north, company.after_sales])
    make_tag_group("售后专用", parent=outer, departments=[company.after_sales])
    make_tag_group("全员子组", parent=outer)
    inner_only, _ = make_tag_group("只给销售", departments=[company.sales])
    make_tag_group("开放但父组受限", parent=inner_only)
    assert names(visible_tag_groups(company.staff)) == ["全员子组", "华北", "售后专用"]
    assert names(visible_tag_groups(company.manager)) == ["全员子组", "华北"]
    assert names(visible_tag_groups(company.seller)) == ["只给销售", "开放但父组受限"]


def test_third_level_needs_both_ancestors(company):
    top, _ = make_tag_group("行业")
    mid, _ = make_tag_group("制造业", parent=top, departments=[company.sales])
    make_tag_group("汽车", parent=mid, tags=["整车厂"])
    assert names(visible_tag_groups(company.staff)) == ["行业"]
    assert names(visible_tags(company.staff)) == []
    assert names(visible_tag_groups(company.seller)) == ["制造业", "汽车", "行业"]
    assert names(visible_tags(company.seller)) == ["整车厂"]


def test_restricted_grandparent_hides_open_middle_and_open_leaf(company):
    """Rule 4 through two levels: the leaf and the middle are open, only the top is scoped; an
    outsider sees none of the three (a check of the parent alone would show them the leaf)."""
    top, _ = make_tag_group("行业", departments=[company.sales])
    mid, _ = make_tag_group("制造业", parent=top)
    make_tag_group("汽车", parent=mid, tags=["整车厂"])
    assert names(visible_tag_groups(company.staff)) == []
    assert names(visible_tags(company.staff)) == []
    assert names(visible_tag_groups(company.seller)) == ["制造业", "汽车", "行业"]
    assert names(visible_tags(company.seller)) == ["整车厂"]


def test_tags_visible_exactly_when_group_is(company):
    make_tag_group("售后服务", departments=[company.after_sales], tags=["保养到期", "延保服务"])
    make_tag_group("客户等级", tags=["VIP客户"])
    assert names(visible_tags(company.staff)) == ["VIP客户", "保养到期", "延保服务"]
    assert names(visible_tags(company.seller)) == ["VIP客户"]


def test_several_departments_union(company):
    make_tag_group("售后服务", departments=[company.after_sales])
    both = EmployeeFactory(roles=["staff"], departments=[company.sales, company.after_sales])
    assert names(visible_tag_groups(both)) == ["售后服务"]


def test_tag_admin_applies_only_visible_enterprise_admin_and_none_see_all(company):
    """Decision (tags/selectors.py): tag admins manage all groups but apply only visible ones."""
    make_tag_group("售后服务", departments=[company.after_sales])
    make_tag_group("客户等级")
    tag_admin = EmployeeFactory(roles=["tag_admin"], departments=[company.sales])
    enterprise_admin = EmployeeFactory(roles=["enterprise_admin"], departments=[company.sales])
    assert names(visible_tag_groups(tag_admin)) == ["客户等级"]
    assert names(visible_tag_groups(enterprise_admin)) == ["售后服务", "客户等级"]
    assert names(visible_tag_groups(None)) == ["售后服务", "客户等级"]


def test_no_department_sees_only_open_groups(company):
    make_tag_group("售后服务", departments=[company.after_sales])
    make_tag_group("客户等级")
    assert names(visible_tag_groups(EmployeeFactory(roles=["staff"]))) == ["客户等级"]


def test_selector_is_one_query(company, django_assert_num_queries):
    top, _ = make_tag_group("行业", departments=[company.after_sales])
    make_tag_group("制造业", parent=top)
    assert company.staff.roles  # roles are cached per instance (one query, once per request)
    with django_assert_num_queries(1):
        list(visible_tag_groups(company.staff))


# ------------------------------------------------------------------ property test (hypothesis)


def brute_force_visible(groups, member_of):
    """Rules 3 and 4 stated directly: own scope admits (empty, or exact department match), and so
    does every ancestor's."""
    def admits(g):
        return not g["scope"] or bool(g["scope"] & member_of)

    visible = set()
    for gid, g in groups.items():
        node, ok = g, True
        while node is not None:
            ok = ok and admits(node)
            node = groups.get(node["parent"])
        if ok:
            visible.add(gid)
    return visible


@st.composite
def worlds(draw):
    n_depts = draw(st.integers(1, 8))
    dept_parents = [None] + [draw(st.integers(0, i - 1)) for i in range(1, n_depts)]
    n_groups = draw(st.integers(1, 10))
    group_parents, levels = [], []
    for i in range(n_groups):
        candidates = [j for j in range(i) if levels[j] < 2]
        parent = draw(st.one_of(st.none(), st.sampled_from(candidates))) if candidates else None
        group_parents.append(parent)
        levels.append(0 if parent is None else levels[parent] + 1)
    scopes = [draw(st.frozensets(st.integers(0, n_depts - 1), max_size=3)) for _ in range(n_groups)]
    n_emps = draw(st.integers(1, 4))
    memberships = [draw(st.frozensets(st.integers(0, n_depts - 1), max_size=3)) for _ in range(n_emps)]
    return dept_parents, group_parents, scopes, memberships


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(world=worlds())
def test_selector_matches_brute_force_definition(db, world):
    dept_parents, group_parents, scopes, memberships = world
    _clear_world()
    depts = []
    for i, p in enumerate(dept_parents):
        depts.append(Department.objects.create(name=f"d{i}", parent=None if p is None else depts[p]))
    groups = []
    for i, p in enumerate(group_parents):
        g = TagGroup.objects.create(name=f"g{i}", parent=None if p is None else groups[p], order=i)
        g.departments.set([depts[d] for d in scopes[i]])
        groups.append(g)
    model = {g.pk: {"parent": None if p is None else groups[p].pk, "scope": {depts[d].pk for d in scopes[i]}}
             for i, (g, p) in enumerate(zip(groups, group_parents, strict=True))}
    for n, members in enumerate(memberships):
        emp = Employee.objects.create(userid=f"prop{n}", name=f"p{n}")  # no password: hashing is slow
        emp.departments.set([depts[d] for d in members])
        expected = brute_force_visible(model, {depts[d].pk for d in members})
        assert set(visible_tag_groups(emp).values_list("pk", flat=True)) == expected


def _clear_world():
    """Examples share the test's transaction: start each from an empty company."""
    Tag.objects.all().delete()
    TagGroup.objects.update(parent=None)
    TagGroup.objects.all().delete()
    Employee.objects.filter(userid__startswith="prop").delete()
    Department.objects.update(parent=None)
    Department.objects.all().delete()


def test_health_reports_crowding_and_folded_duplicates_not_reused_names(company):
    from tags.selectors import taxonomy_health

    for i in range(18):
        make_tag_group(f"开放{i}")
    for i in range(3):
        make_tag_group(f"售后{i}", departments=[company.after_sales])
    make_tag_group("甲", tags=["VIP客户", "其他", "保养到期"])
    make_tag_group("乙", tags=["ｖｉｐ 客户", "其他", "保养已到期"])
    report = taxonomy_health()
    assert report.crowded_departments == [(company.after_sales, 23)]  # 20 open + 3 of its own
    pairs = {(a.name, b.name, kind) for a, b, kind in report.near_duplicates}
    assert ("VIP客户", "ｖｉｐ 客户", "same") in pairs
    assert ("保养到期", "保养已到期", "similar") in pairs
    assert not any("其他" in (a, b) for a, b, _ in pairs)
    cheap = taxonomy_health(similar=False)
    assert {(a.name, b.name) for a, b, _ in cheap.near_duplicates} == {("VIP客户", "ｖｉｐ 客户")}
