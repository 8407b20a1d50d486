"""`seed_demo`'s channel-code part: the codes' adds spread over the last 30 days, and so are the tags
the trigger gave (the 数据看板's tagging activity shows history, not one spike on the seeding day)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.management import call_command
from django.utils import timezone

from channels.models import ChannelAdd, ChannelCode
from customers.models import FollowRelation, TagEvent, TagSource

pytestmark = pytest.mark.django_db(transaction=True)


def test_seeded_channel_tags_are_dated_at_their_adds(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    call_command("seed_demo", customers=300)
    assert ChannelCode.objects.count() >= 4
    events = TagEvent.objects.filter(source=TagSource.CHANNEL, action="add")
    total = events.count()
    assert total > 100
    today = events.filter(created_at__gte=timezone.now() - dt.timedelta(hours=24)).count()
    adds_today = ChannelAdd.objects.filter(added_at__gte=timezone.now() - dt.timedelta(hours=24)).count()
    assert today <= 3 * max(adds_today, 1) + 10, (today, total)  # about the day's adds, not the month's
    days = {timezone.localdate(t) for t in events.values_list("created_at", flat=True)}
    assert len(days) >= 20


def test_seeded_channel_adds_go_to_the_codes_own_team(settings):
    """A WeCom contact way sends customers only to its receivers: in the demo, every add of a code (and
    every relation carrying its state) is an employee of the code's department, so the per-employee
    chart of 2026北京车展 shows Beijing's sales staff, not colleagues from other cities."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    call_command("seed_demo", customers=300)
    for code in ChannelCode.objects.select_related("department"):
        team = set(code.department.get_descendants(include_self=True).values_list("members", flat=True))
        team |= set(code.employees.values_list("pk", flat=True))
        team |= set(code.backup_employees.values_list("pk", flat=True))
        adders = set(ChannelAdd.objects.filter(code=code).values_list("employee_id", flat=True))
        carriers = set(FollowRelation.objects.filter(state=code.state).values_list("employee_id", flat=True))
        assert adders, code.name
        assert adders <= team and carriers <= team, (code.name, adders - team, carriers - team)
