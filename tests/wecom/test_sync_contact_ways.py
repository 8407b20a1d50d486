"""Channel codes as WeCom contact ways, against the stand-in over real HTTP: created with the code's
state, updated when its employees change or one reaches the daily limit (restored next day),
deleted with the code; WeCom's config_id and qr_code kept on the code."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from channels.models import ChannelCode
from channels.services import channel_code_create, channel_code_delete, channel_code_update, codes_refresh_receivers
from customers.services import customer_upsert
from org.actors import Actor
from tests.wecom.sync_world import employee

pytestmark = pytest.mark.django_db

ENTERPRISE = Actor(label="tests")


def ways(sim) -> dict:
    return sim.state.contact_ways


def test_a_code_is_a_contact_way_kept_in_step(wecom_fake, django_capture_on_commit_callbacks):
    sim = wecom_fake
    for userid in ("zhangwei", "lina", "wangfang"):
        employee(sim, userid)
    with django_capture_on_commit_callbacks(execute=True):
        code = channel_code_create(actor=ENTERPRISE, data={
            "name": "2026 上海车展", "state": "expo2026", "employees": ["zhangwei", "lina"], "daily_limit": 1})
    assert len(sim.calls("externalcontact/add_contact_way")) == 1  # once, though two hooks fired
    code.refresh_from_db()
    way = ways(sim)[code.config_id]
    assert way["state"] == "expo2026" and way["scene"] == 2 and way["remark"] == "2026 上海车展"
    assert sorted(way["user"]) == ["lina", "zhangwei"]
    assert code.qr_code == way["qr_code"] and code.qr_code.startswith("https://")

    # zhangwei receives a customer through it and reaches his daily limit: WeCom sends the next to lina
    with django_capture_on_commit_callbacks(execute=True):
        customer_upsert(actor=ENTERPRISE, data={"external_userid": "wmCW1", "name": "王女士",
                                                "followers": [{"employee": "zhangwei", "state": "expo2026"}]})
    assert ways(sim)[code.config_id]["user"] == ["lina"]
    # the next day (Asia/Shanghai) both receive again
    tomorrow = (timezone.localtime() + dt.timedelta(days=1)).replace(hour=10, minute=0)  # Asia/Shanghai
    with django_capture_on_commit_callbacks(execute=True):
        codes_refresh_receivers(now=tomorrow)
    assert sorted(ways(sim)[code.config_id]["user"]) == ["lina", "zhangwei"]

    # employees edited
    with django_capture_on_commit_callbacks(execute=True):
        channel_code_update(actor=ENTERPRISE, code=ChannelCode.objects.get(pk=code.pk),
                            data={"employees": ["wangfang"], "name": "车展"})
    way = ways(sim)[code.config_id]
    assert way["user"] == ["wangfang"] and way["remark"] == "车展"
    assert len(sim.calls("externalcontact/add_contact_way")) == 1

    config_id = code.config_id
    with django_capture_on_commit_callbacks(execute=True):
        channel_code_delete(actor=ENTERPRISE, code=ChannelCode.objects.get(pk=code.pk))
    assert config_id not in ways(sim)


def test_standalone_nothing_is_called(db, settings):
    settings.WECOM_CORP_ID = settings.WECOM_SECRET = ""
    employee_ = __import__("tests.factories", fromlist=["EmployeeFactory"]).EmployeeFactory(userid="solo")
    code = channel_code_create(actor=ENTERPRISE, data={"name": "门店", "employees": [employee_.userid]})
    assert code.config_id == "" and code.qr_code == ""


def test_a_disabled_code_keeps_no_receivers_and_its_contact_way_goes_to_all_its_employees(
        wecom_fake, django_capture_on_commit_callbacks):
    """停用: the rotation stops (the periodic refresh skips disabled codes), so the code keeps no
    receivers of its own: WeCom's contact way goes back to every active employee of the code, not the
    ones who happened to be under their daily limit when it was disabled."""
    sim = wecom_fake
    for userid in ("zhangwei", "lina"):
        employee(sim, userid)
    with django_capture_on_commit_callbacks(execute=True):
        code = channel_code_create(actor=ENTERPRISE, data={
            "name": "门店", "state": "store01", "employees": ["zhangwei", "lina"], "daily_limit": 1})
    with django_capture_on_commit_callbacks(execute=True):
        customer_upsert(actor=ENTERPRISE, data={"external_userid": "wmOFF1", "name": "李先生",
                                                "followers": [{"employee": "zhangwei", "state": "store01"}]})
    code.refresh_from_db()
    assert ways(sim)[code.config_id]["user"] == ["lina"]  # zhangwei is full today

    with django_capture_on_commit_callbacks(execute=True):
        channel_code_update(actor=ENTERPRISE, code=code, data={"enabled": False})
    code.refresh_from_db()
    assert code.receivers == []
    assert sorted(ways(sim)[code.config_id]["user"]) == ["lina", "zhangwei"]
