"""A real Celery worker processing WeCom events on PostgreSQL, killed mid-batch: nothing is lost and
nothing is done twice."""

from __future__ import annotations

import time

import pytest
from django.db import connection

from customers.models import Customer, FollowRelation, TagEvent, TagSource
from tests.factories import EmployeeFactory, make_tag_group
from tests.wecom.conftest import post_event
from wecom.models import EventStatus, WeComEvent
from wecom.simulator import CorpTag, CorpTagGroup

pytestmark = [pytest.mark.worker, pytest.mark.postgres]


def wait_for(predicate, timeout: float, message: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(message)


def done_count() -> int:
    return WeComEvent.objects.filter(status=EventStatus.DONE).count()


def test_worker_killed_mid_batch_loses_and_doubles_nothing(wecom_fake, celery_worker):
    if connection.vendor != "postgresql":
        pytest.skip("the worker test runs on PostgreSQL")
    employees = ["zhangwei", "lina", "wangfang"]
    for userid in employees:
        EmployeeFactory(userid=userid)
    _group, (vip,) = make_tag_group("客户等级", tags=["VIP客户"])
    vip.external_id = "etVIP"
    vip.save(update_fields=["external_id"])
    wecom_fake.state.tag_groups["eg1"] = CorpTagGroup(group_id="eg1", group_name="客户等级",
                                                      tag=[CorpTag(id="etVIP", name="VIP客户")])
    wecom_fake.latency = 0.08  # each externalcontact/get takes a while: the kill lands mid-batch

    customers = [f"wmKILL{i:03d}" for i in range(24)]
    expected_remark = {}
    for i, external_userid in enumerate(customers):
        userid = employees[i % len(employees)]
        contact, follower, code = wecom_fake.state.add_contact(
            userid=userid, external_userid=external_userid, name=f"客户{i}", remark="第一次",
            tags=[{"group_name": "客户等级", "tag_name": "VIP客户", "tag_id": "etVIP", "type": 1}],
        )
        assert post_event(wecom_fake, wecom_fake.add_contact_event(contact, follower, code)).status_code == 200
        # an edit of the same relation right after: must be applied after the add, never before
        follower.remark = f"第二次-{i}"
        expected_remark[external_userid] = follower.remark
        assert post_event(wecom_fake, wecom_fake.contact_event(
            "edit_external_contact", userid=userid, external_userid=external_userid)).status_code == 200
    total = len(customers) * 2
    assert WeComEvent.objects.count() == total

    wait_for(lambda: done_count() >= 5, 60, "the worker processed nothing")
    celery_worker.kill()
    processed_before_kill = done_count()
    assert processed_before_kill < total, "the kill came too late to test anything"

    celery_worker.start()
    from wecom.tasks import retry_events

    retry_events.delay()  # what celery beat does periodically
    wait_for(lambda: done_count() == total, 120, f"only {done_count()} of {total} events processed")

    events = list(WeComEvent.objects.all())
    assert {e.status for e in events} == {EventStatus.DONE}
    # a killed run rolled back with its event: every event shows exactly one (committed) attempt
    assert {e.attempts for e in events} == {1}
    assert Customer.objects.filter(external_userid__in=customers).count() == len(customers)
    for external_userid in customers:
        relation = FollowRelation.objects.get(customer__external_userid=external_userid)
        assert relation.remark == expected_remark[external_userid]  # the edit came after the add
    adds = TagEvent.objects.filter(customer__external_userid__in=customers, source=TagSource.WECOM)
    assert adds.count() == len(customers)  # each customer's VIP tag added once, not twice
