"""Rule 14 gaps found in review: what no other test would notice when it breaks."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from channels.models import ChannelAdd, ChannelCode
from channels.selectors import receivers_now
from customers.models import Tagging
from tests.channels.conftest import add_through, make_code

pytestmark = pytest.mark.django_db
SH = ZoneInfo("Asia/Shanghai")
EVERY_DAY = [str(d) for d in range(7)]


def test_working_hours_until_midnight_2400_are_accepted_and_receive_until_the_day_ends(world, crm):
    """HH:MM "24:00" is a valid end (the service accepts it): the code must save, receive before
    midnight, and never break the trigger of a customer who adds through it."""
    w = world
    hours = {d: [["18:00", "24:00"]] for d in EVERY_DAY}
    r = crm.post("/api/v1/channel-codes/", {"name": "夜场", "state": "night", "employees": ["zhangsan"],
                                            "backup_employees": ["wangwu"], "working_hours": hours,
                                            "tags": [w.vip.pk]}, format="json")
    assert r.status_code == 201, r.content
    code = ChannelCode.objects.get(state="night")
    late = dt.datetime(2026, 11, 20, 23, 59, tzinfo=SH)
    noon = dt.datetime(2026, 11, 20, 12, 0, tzinfo=SH)
    assert [e.userid for e in receivers_now(code, now=late).employees] == ["zhangsan"]
    assert receivers_now(code, now=late).backup is False
    assert receivers_now(code, now=noon).backup is True
    customer = add_through("night", w.staff, "wmNIGHT")
    assert set(Tagging.objects.filter(customer=customer).values_list("tag_id", flat=True)) == {w.vip.pk}
    assert crm.get(f"/api/v1/channel-codes/{code.pk}/receivers/").status_code == 200


def test_a_group_made_single_choice_after_the_code_was_saved_gives_one_tag_and_never_fails_the_add(world):
    """The code was saved with two tags of an ordinary group; the group then became single-choice.
    A customer who adds through the code still arrives (the add never fails) with one of them."""
    from tags import services as tag_services
    from tests.channels.conftest import ENTERPRISE

    w = world
    make_code(state="two_levels", employees=[w.staff], tags=[w.vip, w.potential])
    tag_services.tag_group_update(actor=ENTERPRISE, group=w.level, single_choice=True)
    customer = add_through("two_levels", w.staff, "wmSINGLE")
    held = set(Tagging.objects.filter(customer=customer).values_list("tag_id", flat=True))
    assert len(held & {w.vip.pk, w.potential.pk}) == 1
    assert ChannelAdd.objects.filter(customer=customer).count() == 1


def test_round_robin_without_a_limit_takes_turns(world):
    """With no daily limit, round robin still alternates: the next customer goes to whoever follows the
    last one who received, not always to the first employee."""
    from channels.models import Rotation

    w = world
    code = make_code(state="rr", employees=[w.staff, w.team_staff], rotation=Rotation.ROUND_ROBIN)
    first, second = sorted([w.staff, w.team_staff], key=lambda e: e.pk)
    now = dt.datetime(2026, 11, 21, 12, 0, tzinfo=SH)
    assert receivers_now(code, now=now).next == first
    add_through("rr", first, "wmRR1", added_at="2026-11-21T10:00:00+08:00")
    assert receivers_now(code, now=now).next == second
    add_through("rr", second, "wmRR2", added_at="2026-11-21T10:05:00+08:00")
    assert receivers_now(code, now=now).next == first


def test_a_manager_who_receives_another_departments_code_sees_it_but_cannot_change_it(world):
    """Visibility of codes: receiving a code (as receiver or backup) lets a manager see it, never
    manage it; only codes of the departments they manage are theirs to change or delete."""
    from tests.channels.test_api import session

    w = world
    other = make_code(name="售后码", employees=[w.after_staff], backup_employees=[w.manager],
                      department=w.after_sales.pk)
    api = session(w.manager)
    assert api.get(f"/api/v1/channel-codes/{other.pk}/").status_code == 200
    assert api.patch(f"/api/v1/channel-codes/{other.pk}/", {"name": "改"}, format="json").status_code == 403
    assert api.delete(f"/api/v1/channel-codes/{other.pk}/").status_code == 403
    other.refresh_from_db()
    assert other.name == "售后码"


def test_least_loaded_prefers_fewest_today_even_when_that_one_received_last(world):
    """Least-loaded counts today's adds first: the one who received last still gets the next customer
    while they have fewer today (taking turns only breaks ties)."""
    from channels.models import Rotation

    w = world
    code = make_code(state="ll", employees=[w.staff, w.team_staff], rotation=Rotation.LEAST_LOADED)
    now = dt.datetime(2026, 11, 21, 12, 0, tzinfo=SH)
    add_through("ll", w.staff, "wmLL1", added_at="2026-11-21T09:00:00+08:00")
    add_through("ll", w.staff, "wmLL2", added_at="2026-11-21T09:10:00+08:00")
    add_through("ll", w.team_staff, "wmLL3", added_at="2026-11-21T09:20:00+08:00")  # the last to receive
    receivers = receivers_now(code, now=now)
    assert receivers.next == w.team_staff  # 1 today against 2
    assert receivers.today == {w.staff.pk: 2, w.team_staff.pk: 1}


def test_a_backup_cannot_also_be_a_receiver_on_create_or_on_update(world, crm):
    """备用成员不能同时是接待成员: refused with 400 naming backup_employees, whether both lists come in one
    call or one of them is changed later against the code's other list."""
    w = world
    r = crm.post("/api/v1/channel-codes/", {"name": "重叠", "employees": ["zhangsan"],
                                            "backup_employees": ["zhangsan", "wangwu"]}, format="json")
    assert r.status_code == 400 and "backup_employees" in r.json()["error"]["details"]
    assert not ChannelCode.objects.exists()

    code = make_code(state="overlap", employees=[w.staff], backup_employees=[w.after_staff])
    r = crm.patch(f"/api/v1/channel-codes/{code.pk}/", {"backup_employees": ["zhangsan"]}, format="json")
    assert r.status_code == 400 and "backup_employees" in r.json()["error"]["details"], r.content
    r = crm.patch(f"/api/v1/channel-codes/{code.pk}/", {"employees": ["zhangsan", "wangwu"]}, format="json")
    assert r.status_code == 400 and "backup_employees" in r.json()["error"]["details"], r.content
    assert [e.userid for e in code.employees.all()] == ["zhangsan"]
    assert [e.userid for e in code.backup_employees.all()] == ["wangwu"]
    # moving someone from backup to receiver in one call is fine
    r = crm.patch(f"/api/v1/channel-codes/{code.pk}/", {"employees": ["zhangsan", "wangwu"], "backup_employees": []},
                  format="json")
    assert r.status_code == 200, r.content


def test_a_manager_of_one_department_creates_a_code_without_naming_it(world):
    """API.md's fields do not include the department: a manager of exactly one department who leaves it
    out gets a code of that department (theirs to manage), not a 400."""
    from tests.channels.test_api import session

    w = world
    api = session(w.manager)
    r = api.post("/api/v1/channel-codes/", {"name": "销售码", "employees": ["zhangsan"]}, format="json")
    assert r.status_code == 201, r.content
    assert r.json()["department"] == w.sales.pk
    assert api.patch(f"/api/v1/channel-codes/{r.json()['id']}/", {"name": "销售码2"}, format="json").status_code == 200
