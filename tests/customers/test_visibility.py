"""Rule 5: who sees which customers. Staff their own, managers also those of members of the departments
they manage (exactly those, not sub-departments), HR and admins all; the list filters on top."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.utils import timezone

from customers.models import FollowRelation, RelationStatus, Tagging
from customers.selectors import CustomerFilter, customers_filtered, parse_customer_filter, visible_customers
from tagportal.errors import ValidationFailed
from tests.customers.world import world_fixture  # noqa: F401
from tests.factories import CustomerFactory, EmployeeFactory

pytestmark = pytest.mark.django_db


def names(qs) -> set[str]:
    return set(qs.values_list("name", flat=True))


def test_staff_see_the_customers_they_follow(world):
    assert names(visible_customers(world.staff)) == {"张三的客户", "共同客户"}
    assert names(visible_customers(world.team_staff)) == {"一组的客户"}


def test_manager_sees_own_and_managed_department_members_customers_not_sub_departments(world):
    # 销售一组 is a sub-department of 销售部: its member's customer is not the manager's.
    assert names(visible_customers(world.manager)) == {"张三的客户", "共同客户", "经理的客户"}


def test_manager_of_the_sub_department_listed_explicitly_sees_it(world):
    world.manager.managed_departments.add(world.sales_team)
    assert "一组的客户" in names(visible_customers(world.manager))


def test_manager_role_is_needed_for_managed_departments(world):
    # managed_departments set but no manager role: staff rights only.
    pseudo = EmployeeFactory(roles=["staff"], managed_departments=[world.sales])
    assert names(visible_customers(pseudo)) == set()


@pytest.mark.parametrize("who", ["hr", "tag_admin", "admin"])
def test_hr_tag_admins_and_admins_see_all(world, who):
    assert visible_customers(getattr(world, who)).count() == 5


def test_enterprise_level_sees_all(world):
    assert visible_customers(None).count() == 5


def test_transferred_relation_no_longer_gives_access(world):
    FollowRelation.objects.filter(employee=world.staff, customer=world.c_staff).update(
        status=RelationStatus.TRANSFERRED
    )
    assert names(visible_customers(world.staff)) == {"共同客户"}


def test_departed_employee_sees_nothing(world):
    world.staff.status = "departed"
    world.staff.save()
    assert not visible_customers(world.staff).exists()


# ---------------------------------------------------------------- filters


def test_parse_round_trips_through_as_params():
    flt = parse_customer_filter({
        "tags_all": "3, 4", "tags_none": "9", "follower": "zhangsan", "department": "12", "q": "王",
        "added_from": "2026-01-01", "added_to": "2026-01-31", "updated_since": "2026-02-01T08:00:00+08:00",
        "ignored": "x",
    })
    assert flt.tags_all == (3, 4) and flt.department == 12
    assert parse_customer_filter(flt.as_params()) == flt
    assert CustomerFilter().is_empty


@pytest.mark.parametrize(
    "params, key",
    [({"tags_all": "3,x"}, "tags_all"), ({"department": "sales"}, "department"),
     ({"added_from": "2026-13-01"}, "added_from"), ({"updated_since": "yesterday"}, "updated_since")],
)
def test_bad_filter_values_name_the_key(params, key):
    with pytest.raises(ValidationFailed) as exc:
        parse_customer_filter(params)
    assert key in exc.value.details


def test_tag_filters_all_any_none(world):
    a, b, c = CustomerFactory(name="A"), CustomerFactory(name="B"), CustomerFactory(name="C")
    for customer, tags in ((a, [world.vip, world.hot]), (b, [world.vip, world.won]), (c, [world.vip])):
        for tag in tags:
            Tagging.objects.create(customer=customer, tag=tag)

    def run(**kw):
        return names(customers_filtered(employee=None, flt=CustomerFilter(**kw)))

    assert run(tags_all=(world.vip.pk, world.hot.pk)) == {"A"}
    assert run(tags_any=(world.hot.pk, world.won.pk)) == {"A", "B"}
    assert run(tags_all=(world.vip.pk,), tags_none=(world.won.pk,)) == {"A", "C"}


def test_filter_by_a_hidden_tag_is_refused(world):
    with pytest.raises(ValidationFailed) as exc:
        customers_filtered(employee=world.manager, flt=CustomerFilter(tags_any=(world.maintenance.pk,)))
    assert exc.value.details["tags"] == [world.maintenance.pk]


def test_filters_stay_inside_visibility(world):
    Tagging.objects.create(customer=world.c_team, tag=world.vip)
    Tagging.objects.create(customer=world.c_staff, tag=world.vip)
    assert names(customers_filtered(employee=world.manager, flt=CustomerFilter(tags_all=(world.vip.pk,)))) == {
        "张三的客户"}


def test_follower_department_state_and_dates(world):
    FollowRelation.objects.filter(customer=world.c_after).update(
        state="expo", added_at=timezone.make_aware(dt.datetime(2026, 3, 15, 10))
    )
    assert names(customers_filtered(employee=None, flt=CustomerFilter(follower="zhangsan"))) == {
        "张三的客户", "共同客户"}
    # department is exact: the sub-department's member is not counted under 销售部.
    assert names(customers_filtered(employee=None, flt=CustomerFilter(department=world.sales.pk))) == {
        "张三的客户", "共同客户", "经理的客户"}
    assert names(customers_filtered(employee=None, flt=CustomerFilter(state="expo"))) == {"售后的客户"}
    in_march = CustomerFilter(added_from=dt.date(2026, 3, 1), added_to=dt.date(2026, 3, 15))
    assert names(customers_filtered(employee=None, flt=in_march)) == {"售后的客户"}


def test_search_by_name_or_remark(world):
    FollowRelation.objects.filter(customer=world.c_team).update(remark="采购王总")
    assert names(customers_filtered(employee=None, flt=CustomerFilter(q="王总"))) == {"一组的客户"}
    assert names(customers_filtered(employee=None, flt=CustomerFilter(q="经理"))) == {"经理的客户"}


@pytest.mark.parametrize("who", ["staff", "manager", "admin", "team_staff"])
def test_count_matches_the_filtered_list(world, who):
    from customers.selectors import customers_count

    for i, customer in enumerate([world.c_staff, world.c_team, world.c_shared, world.c_manager, world.c_after]):
        Tagging.objects.create(customer=customer, tag=world.vip)
        if i % 2 == 0:
            Tagging.objects.create(customer=customer, tag=world.hot)
        if i == 2:
            Tagging.objects.create(customer=customer, tag=world.won)
    FollowRelation.objects.filter(customer=world.c_staff).update(remark="王总")
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:  # planner statistics: the count picks the rarest tag from them
            cursor.execute(f"ANALYZE {Tagging._meta.db_table}")
    employee = getattr(world, who)
    for flt in (
        CustomerFilter(tags_all=(world.vip.pk, world.hot.pk)),
        CustomerFilter(tags_all=(world.vip.pk,), tags_none=(world.won.pk,)),
        CustomerFilter(tags_all=(world.vip.pk,), q="王总"),
        CustomerFilter(tags_all=(world.vip.pk,), follower="zhangsan", tags_any=(world.hot.pk, world.won.pk)),
        CustomerFilter(tags_any=(world.hot.pk,)),
        CustomerFilter(),
    ):
        assert customers_count(employee=employee, flt=flt) == customers_filtered(employee=employee, flt=flt).count()
    world.staff.status = "departed"
    world.staff.save()
    assert customers_count(employee=world.staff, flt=CustomerFilter(tags_all=(world.vip.pk,))) == 0
