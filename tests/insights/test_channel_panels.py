"""The panels the channel codes contribute (channels/insights.py): adds per code per day and
retention after 7 / 30 days, scoped like the rest of the dashboard."""

import datetime as dt

from django.utils import timezone

from channels.models import ChannelAdd
from channels.services import channel_code_create
from customers.models import Customer
from customers.services import customer_upsert, follow_relation_end
from insights.registry import get_panel, panels_for
from insights.selectors import parse_panel_query
from org.actors import Actor
from tests.insights.world import world_fixture  # noqa: F401

AUTOMATION = Actor(label="test")


def came_through(code, employee, n, *, days_ago, prefix):
    added = timezone.now() - dt.timedelta(days=days_ago)
    customers = []
    for i in range(n):
        customer, _ = customer_upsert(actor=AUTOMATION, data={
            "external_userid": f"{prefix}{i}", "name": f"{prefix}{i}",
            "followers": [{"employee": employee.userid, "state": code.state, "added_at": added.isoformat()}],
        })
        customers.append(customer)
    # the trigger records the add at the moment it ran: date it back like the relation
    ChannelAdd.objects.filter(customer__in=customers).update(added_at=added, day=timezone.localdate(added))
    return customers


def test_adds_per_code_and_retention_scoped_per_manager(world):
    bj_code = channel_code_create(actor=Actor(employee=world.admin), data={
        "name": "北京展会", "state": "expo_bj", "employees": [world.staff_bj.userid], "tags": [world.vip.pk]})
    sh_code = channel_code_create(actor=Actor(employee=world.admin), data={
        "name": "上海门店", "state": "store_sh", "employees": [world.staff_sh.userid], "tags": []})
    bj = came_through(bj_code, world.staff_bj, 4, days_ago=40, prefix="bjexpo")
    came_through(sh_code, world.staff_sh, 3, days_ago=2, prefix="shstore")
    # one 北京 customer left after 10 days: still there at 7, gone at 30
    follow_relation_end(actor=AUTOMATION, customer=bj[0], employee=world.staff_bj, status="lost",
                        ended_at=timezone.now() - dt.timedelta(days=30))

    assert {"channel_adds_daily", "channel_retention"} <= {p.key for p in panels_for(world.manager_bj)}
    q = parse_panel_query({"from": (timezone.localdate() - dt.timedelta(days=60)).isoformat()}, viewer=world.admin)
    daily = get_panel("channel_adds_daily").selector(q)
    assert {s.name: sum(s.data) for s in daily.series} == {"北京展会": 4, "上海门店": 3}
    retention = get_panel("channel_retention").selector(q)
    by_name = dict(zip(retention.categories, zip(*(s.data for s in retention.series), strict=True), strict=True))
    assert by_name["北京展会"][:3] == (100.0, 75.0, 4)  # all 4 still followed after 7 days, 3 after 30
    assert by_name["上海门店"][:3] == (None, None, 3)  # too recent to tell
    link = retention.series[0].links[retention.categories.index("北京展会")]
    assert "state=expo_bj" in link and f"added_from={q.date_from.isoformat()}" in link  # the range's customers

    mine = get_panel("channel_adds_daily").selector(
        parse_panel_query({"from": q.date_from.isoformat()}, viewer=world.manager_bj))
    assert [s.name for s in mine.series] == []  # 北京's codes without a department are the admins'
    assert Customer.objects.filter(external_userid__startswith="shstore").count() == 3
