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


def test_channel_panels_per_role_hr_none_staff_their_own_customers_department_exact(world):
    """Who sees the channel panels and what in them: HR has no channel panels (and gets 404 asking for
    one); a staff member who is a code's backup sees only the adds of customers they follow; the
    department filter keeps the adds received by members of that department."""
    from tests.conftest import as_employee
    from tests.factories import EmployeeFactory

    bj_code = channel_code_create(actor=Actor(employee=world.admin), data={
        "name": "北京展会", "state": "expo_bj", "employees": [world.staff_bj.userid],
        "backup_employees": [world.staff_bj2.userid], "tags": []})
    sh_code = channel_code_create(actor=Actor(employee=world.admin), data={
        "name": "上海门店", "state": "store_sh", "employees": [world.staff_sh.userid], "tags": []})
    came_through(bj_code, world.staff_bj, 3, days_ago=2, prefix="bjexpo")
    came_through(bj_code, world.staff_bj2, 1, days_ago=2, prefix="bjbackup")
    came_through(sh_code, world.staff_sh, 2, days_ago=2, prefix="shstore")
    start = (timezone.localdate() - dt.timedelta(days=10)).isoformat()

    def added(viewer, **params):
        data = get_panel("channel_adds_daily").selector(parse_panel_query({"from": start, **params}, viewer=viewer))
        return {s.name: sum(s.data) for s in data.series}

    hr = EmployeeFactory(userid="hr", name="人事", roles=["hr"])
    assert not {"channel_adds_daily", "channel_retention"} & {p.key for p in panels_for(hr)}
    assert as_employee(hr).get("/api/v1/insights/channel_adds_daily/").status_code == 404
    staff = as_employee(world.staff_bj2).get("/api/v1/insights/channel_adds_daily/", {"from": start})
    assert staff.status_code == 200

    assert added(world.staff_bj) == {"北京展会": 3}
    assert added(world.staff_bj2) == {"北京展会": 1}  # the backup sees the code, not the others' customers
    assert added(world.staff_sh) == {"上海门店": 2}
    assert added(world.admin) == {"北京展会": 4, "上海门店": 2}
    assert added(world.admin, department=str(world.sh.pk)) == {"上海门店": 2}
