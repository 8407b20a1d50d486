"""The customer list's filters the 数据看板 links to: untagged, lost in a date range, activity in a range."""

import datetime as dt

import pytest
from django.utils import timezone

from customers.models import FollowRelation, Message, Note, RelationStatus, TagEvent, Tagging
from customers.selectors import customers_count, customers_filtered, parse_customer_filter
from tagportal.errors import ValidationFailed
from tests.conftest import as_employee, login
from tests.customers.world import world_fixture  # noqa: F401


def ids(employee, **params):
    flt = parse_customer_filter({k: str(v) for k, v in params.items()})
    found = set(customers_filtered(employee=employee, flt=flt).values_list("pk", flat=True))
    assert customers_count(employee=employee, flt=flt) == len(found)
    return found


def at(day: dt.date, hour: int = 12):
    return timezone.make_aware(dt.datetime.combine(day, dt.time(hour)))


def test_untagged_means_no_enterprise_tag_at_all(world):
    Tagging.objects.create(customer=world.c_staff, tag=world.vip)
    Tagging.objects.create(customer=world.c_after, tag=world.maintenance)
    everyone = {world.c_staff.pk, world.c_team.pk, world.c_after.pk, world.c_manager.pk, world.c_shared.pk}
    assert ids(world.admin, untagged=1) == everyone - {world.c_staff.pk, world.c_after.pk}
    assert ids(world.admin, untagged=0) == {world.c_staff.pk, world.c_after.pk}
    # visibility still applies: the manager sees their own and 销售部 members' customers only
    assert ids(world.manager, untagged=1) == {world.c_manager.pk, world.c_shared.pk}


def test_lost_range_describes_the_ended_relation(world):
    today = timezone.localdate()
    rel = FollowRelation.objects.get(customer=world.c_shared, employee=world.after_staff)
    rel.status, rel.ended_at = RelationStatus.LOST, at(today - dt.timedelta(days=3))
    rel.save()
    day = (today - dt.timedelta(days=3)).isoformat()
    assert ids(world.admin, lost_from=day, lost_to=day) == {world.c_shared.pk}
    assert ids(world.admin, lost_from=today.isoformat()) == set()
    # the department names the employee of the ended relation (售后部), not an active follower
    assert ids(world.admin, lost_from=day, department=world.after_sales.pk) == {world.c_shared.pk}
    assert ids(world.admin, lost_from=day, department=world.sales.pk) == set()
    # still visible to 销售部's manager through 张三's active relation
    assert ids(world.manager, lost_from=day, lost_to=day) == {world.c_shared.pk}


def test_activity_ranges(world):
    today = timezone.localdate()
    yesterday = today - dt.timedelta(days=1)
    TagEvent.objects.create(customer=world.c_staff, tag=world.vip, tag_name="VIP客户", action="add",
                            source="bulk", created_at=at(yesterday))
    TagEvent.objects.create(customer=world.c_after, tag=world.maintenance, tag_name="保养到期", action="add",
                            source="manual", created_at=at(yesterday))
    TagEvent.objects.create(customer=world.c_shared, tag=world.maintenance, tag_name="保养到期", action="add",
                            source="manual", created_at=at(yesterday))
    Note.objects.create(customer=world.c_team, author=world.team_staff, text="回访", created_at=at(today))
    Message.objects.create(msgid="m1", customer=world.c_manager, employee=world.manager, direction="in",
                           content="你好", sent_at=at(yesterday))
    y = yesterday.isoformat()
    assert ids(world.admin, activity="tags", activity_from=y, activity_to=y) == {
        world.c_staff.pk, world.c_after.pk, world.c_shared.pk}
    assert ids(world.admin, activity="tags", activity_from=y, activity_source="bulk") == {world.c_staff.pk}
    # a change of a tag hidden from the manager (售后服务 is scoped to 售后部) does not select the customer
    assert ids(world.manager, activity="tags", activity_from=y) == {world.c_staff.pk}
    assert ids(world.admin, activity="notes", activity_from=today.isoformat()) == {world.c_team.pk}
    assert ids(world.admin, activity="messages", activity_to=y) == {world.c_manager.pk}


@pytest.mark.parametrize("params, key", [
    ({"untagged": "maybe"}, "untagged"),
    ({"lost_from": "2026-13-01"}, "lost_from"),
    ({"activity": "calls"}, "activity"),
    ({"activity_from": "2026-11-01"}, "activity"),
    ({"activity": "tags", "activity_source": "fax"}, "activity_source"),
    ({"activity": "notes", "activity_source": "bulk"}, "activity_source"),
])
def test_bad_values_name_the_key(world, params, key):
    with pytest.raises(ValidationFailed) as exc:
        parse_customer_filter(params)
    assert key in exc.value.details
    response = as_employee(world.admin).get("/api/v1/customers/", params)
    assert response.status_code == 400 and key in str(response.json()["error"]["details"])


def test_list_page_keeps_and_explains_the_filter(world):
    response = login(world.admin).get("/customers/customer/", {"untagged": "1"})
    html = response.content.decode()
    assert response.status_code == 200
    assert 'name="untagged" value="1"' in html and "没有任何企业标签" in html
    assert "共 <strong>5</strong> 位客户符合条件" in html
