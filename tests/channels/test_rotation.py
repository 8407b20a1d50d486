"""Rotation and the daily limit, across a day boundary in Asia/Shanghai time (UTC+8: Shanghai's
midnight is 16:00 UTC the day before), working hours and backups, and the receivers-changed hook."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from channels import hooks
from channels.models import Rotation
from channels.selectors import receivers_now
from channels.services import code_refresh_receivers, codes_refresh_receivers
from tests.channels.conftest import add_through, make_code

pytestmark = pytest.mark.django_db
SH = ZoneInfo("Asia/Shanghai")


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=SH)


def userids(receivers) -> list[str]:
    return [e.userid for e in receivers.employees]


@pytest.fixture
def changes():
    seen = []

    def handler(*, code, receivers):
        seen.append((code.state, [e.userid for e in receivers.employees], receivers.backup))

    hooks.register_receivers_changed_handler(handler)
    yield seen
    hooks._receivers_changed.remove(handler)


def test_round_robin_within_the_daily_limit_then_backups_then_nobody_and_back_the_next_shanghai_day(world, changes):
    w = world
    code = make_code(state="expo", employees=[w.staff, w.team_staff], backup_employees=[w.after_staff],
                     daily_limit=1, rotation=Rotation.ROUND_ROBIN)
    first, second = sorted([w.staff, w.team_staff], key=lambda e: e.pk)
    evening = at("2026-11-20T23:50:00")  # = 15:50 UTC
    assert userids(receivers_now(code, now=evening)) == [first.userid, second.userid]

    add_through("expo", first, "wm1", added_at="2026-11-20T23:00:00+08:00")
    assert receivers_now(code, now=evening).next == second  # round robin, and `first` is full today
    add_through("expo", second, "wm2", added_at="2026-11-20T23:10:00+08:00")
    full = receivers_now(code, now=evening)
    assert full.backup and userids(full) == ["wangwu"]
    add_through("expo", w.after_staff, "wm3", added_at="2026-11-20T23:20:00+08:00")
    nobody = receivers_now(code, now=evening)
    assert nobody.next is None and "上限" in nobody.reason

    # 16:05 UTC on the same UTC date is already 00:05 on the 21st in Shanghai: everyone receives again,
    # starting after the last who received (round robin carries over the day).
    next_day = dt.datetime(2026, 11, 20, 16, 5, tzinfo=dt.UTC)
    assert userids(receivers_now(code, now=next_day)) == [first.userid, second.userid]
    still_20th_in_shanghai = dt.datetime(2026, 11, 20, 15, 59, tzinfo=dt.UTC)
    assert receivers_now(code, now=still_20th_in_shanghai).next is None

    changes.clear()
    codes_refresh_receivers(now=evening)
    assert changes == [("expo", [], True)]  # the hook hears that nobody can receive
    codes_refresh_receivers(now=next_day)
    assert changes[-1] == ("expo", [first.userid, second.userid], False)  # … and that the new day restored them
    codes_refresh_receivers(now=next_day)
    assert len(changes) == 2  # nothing changed: no call


def test_least_loaded_gives_the_next_customer_to_whoever_has_fewest_today(world):
    w = world
    code = make_code(state="live", employees=[w.staff, w.team_staff], rotation=Rotation.LEAST_LOADED)
    now = at("2026-11-21T10:00:00")
    add_through("live", w.staff, "wm1", added_at="2026-11-21T09:00:00+08:00")
    add_through("live", w.staff, "wm2", added_at="2026-11-21T09:10:00+08:00")
    add_through("live", w.team_staff, "wm3", added_at="2026-11-20T22:00:00+08:00")  # yesterday: not today's load
    assert receivers_now(code, now=now).next == w.team_staff
    add_through("live", w.team_staff, "wm4", added_at="2026-11-21T09:20:00+08:00")
    add_through("live", w.team_staff, "wm5", added_at="2026-11-21T09:30:00+08:00")
    assert receivers_now(code, now=now).next == w.staff  # 2 today each: the one who did not receive last


def test_working_hours_send_customers_to_backups_outside_them(world):
    w = world
    hours = {str(d): [["09:00", "18:00"]] for d in range(5)}  # Monday–Friday
    code = make_code(state="store", employees=[w.staff], backup_employees=[w.after_staff], working_hours=hours)
    friday_noon, friday_night = at("2026-11-20T12:00:00"), at("2026-11-20T18:00:00")
    saturday = at("2026-11-21T12:00:00")
    assert userids(receivers_now(code, now=friday_noon)) == ["zhangsan"]
    assert receivers_now(code, now=friday_night).backup and userids(receivers_now(code, now=friday_night)) == ["wangwu"]
    assert userids(receivers_now(code, now=saturday)) == ["wangwu"]
    alone = make_code(state="alone", employees=[w.staff], working_hours=hours)
    assert receivers_now(alone, now=saturday).next is None and "工作时间" in receivers_now(alone, now=saturday).reason


def test_departed_employees_never_receive(world):
    w = world
    code = make_code(state="expo", employees=[w.staff, w.team_staff])
    w.team_staff.status = "departed"
    w.team_staff.save()
    assert userids(receivers_now(code)) == ["zhangsan"]


def test_reaching_the_limit_on_an_add_tells_the_hook(world, changes):
    w = world
    code = make_code(state="expo", employees=[w.staff, w.team_staff], daily_limit=1)
    changes.clear()
    add_through("expo", w.staff, "wm1")
    assert changes == [("expo", ["lisi"], False)]
    code_refresh_receivers(code=code)
    assert len(changes) == 1
