"""Transfers through WeCom, against the stand-in over real HTTP: 离职继承 / 在职继承 also hand the
customers over in WeCom (≤100 per call), WeCom's answer kept per customer, transfer_result polled
until each ends, transfer_fail applied, WeCom's status beside ours on the result page; WeCom's
待分配离职成员 list as a service."""

from __future__ import annotations

import pytest
from django.urls import reverse

from customers.models import TransferOutcome
from customers.transfers import transfer_start
from org.actors import Actor
from org.models import Employee
from tests.conftest import login
from tests.wecom.sync_world import customer, employee
from tests.wecom.test_sync_taxonomy import deliver
from wecom.models import WeComTransferItem
from wecom.simulator.routes_sync import complete_transfers
from wecom.sync_tasks import poll_transfers
from wecom.transfers import unassigned_list

pytestmark = pytest.mark.django_db

HR = Actor(label="人事测试")
N = 120


@pytest.fixture
def people(wecom_fake):
    zhang, lina = employee(wecom_fake, "zhangwei"), employee(wecom_fake, "lina")
    customers = [customer(wecom_fake, f"wmT{i:03d}", zhang) for i in range(N)]
    return zhang, lina, customers


def test_departed_transfer_goes_to_wecom_in_calls_of_100_and_is_polled_to_the_end(
        wecom_fake, people, admin_user, django_capture_on_commit_callbacks):
    sim = wecom_fake
    zhang, lina, customers = people
    sim.state.users["zhangwei"].status = 5  # left the corp in WeCom too
    with django_capture_on_commit_callbacks(execute=True):
        transfer = transfer_start(actor=HR, from_employee=zhang, to_employees=[lina], mark_departed=True)
    calls = sim.calls("externalcontact/resigned/transfer_customer")
    assert [len(c.body["external_userid"]) for c in calls] == [100, 20]
    assert {c.body["handover_userid"] for c in calls} == {"zhangwei"} and calls[0].body["takeover_userid"] == "lina"
    items = WeComTransferItem.objects.filter(transfer=transfer)
    assert items.count() == N and set(items.values_list("errcode", flat=True)) == {0}
    assert set(items.values_list("status", flat=True)) == {0}  # sent, not polled yet
    # the portal moved the portrait at once, as before
    assert set(transfer.items.values_list("outcome", flat=True)) == {TransferOutcome.MOVED}

    poll_transfers.apply()
    assert set(items.values_list("status", flat=True)) == {2}  # 等待接替
    # 24 h later in WeCom: one customer refused (the event), the rest taken over
    refused = sim.state.transfers[0]
    refused["status"] = 3
    deliver(sim, {"ToUserName": "corp", "FromUserName": "sys", "CreateTime": 1700000000, "MsgType": "event",
                  "Event": "change_external_contact", "ChangeType": "transfer_fail", "FailReason": "customer_refused",
                  "UserID": "lina", "ExternalUserID": refused["external_userid"]})
    assert items.get(external_userid=refused["external_userid"]).status == 3
    complete_transfers(sim)
    poll_transfers.apply()
    assert items.filter(status=1).count() == N - 1 and items.get(status=3).external_userid == refused["external_userid"]
    assert items.filter(status=1).exclude(takeover_time=None).count() == N - 1
    # ended: no more polling of this pair
    sim.clear_calls()
    poll_transfers.apply()
    assert not sim.calls("externalcontact/resigned/transfer_result")

    html = login(admin_user).get(reverse("admin:customers_transfer_change", args=[transfer.pk]) + "?page=1").content
    html = html.decode()
    assert "企业微信状态" in html and "客户拒绝" in html and "接替完毕" in html


def test_on_the_job_transfer_uses_transfer_customer_with_a_message(
        wecom_fake, people, django_capture_on_commit_callbacks):
    sim = wecom_fake
    zhang, lina, customers = people
    with django_capture_on_commit_callbacks(execute=True):
        transfer = transfer_start(actor=HR, from_employee=zhang, to_employees=[lina], mark_departed=False,
                                  customer_ids=[c.pk for c in customers[:3]])
    (call,) = sim.calls("externalcontact/transfer_customer")
    assert sorted(call.body["external_userid"]) == ["wmT000", "wmT001", "wmT002"]
    assert 0 < len(call.body["transfer_success_msg"]) <= 200
    assert not sim.calls("externalcontact/resigned/transfer_customer")
    assert Employee.objects.get(pk=zhang.pk).status == "active"
    poll_transfers.apply()
    assert set(WeComTransferItem.objects.filter(transfer=transfer).values_list("status", flat=True)) == {2}
    assert sim.calls("externalcontact/transfer_result")


def test_wecom_refusing_a_customer_is_kept_per_customer(wecom_fake, people, django_capture_on_commit_callbacks):
    sim = wecom_fake
    zhang, lina, customers = people
    sim.state.users["zhangwei"].status = 5
    sim.state.contacts["wmT001"].follow_users.clear()  # not zhangwei's contact in WeCom any more
    with django_capture_on_commit_callbacks(execute=True):
        transfer = transfer_start(actor=HR, from_employee=zhang, to_employees=[lina],
                                  customer_ids=[c.pk for c in customers[:3]])
    items = dict(WeComTransferItem.objects.filter(transfer=transfer).values_list("external_userid", "errcode"))
    assert items == {"wmT000": 0, "wmT001": 84061, "wmT002": 0}
    poll_transfers.apply()  # an item WeCom refused is not polled
    assert WeComTransferItem.objects.get(external_userid="wmT001").status is None


def test_standalone_a_transfer_calls_nothing(db, settings, django_capture_on_commit_callbacks):
    from tests.factories import CustomerFactory, EmployeeFactory

    settings.WECOM_CORP_ID = settings.WECOM_SECRET = ""
    zhang, lina = EmployeeFactory(userid="z"), EmployeeFactory(userid="l")
    CustomerFactory(followers=[zhang])
    with django_capture_on_commit_callbacks(execute=True):
        transfer_start(actor=HR, from_employee=zhang, to_employees=[lina])
    assert not WeComTransferItem.objects.exists()


def test_unassigned_list_maps_wecom_rows_to_portal_employees_and_customers(wecom_fake, people):
    sim = wecom_fake
    zhang, _lina, customers = people
    sim.state.users["zhangwei"].status = 5
    sim.state.add_contact(userid="zhangwei", external_userid="wmUNKNOWN", welcome_code=False)
    rows, cursor = unassigned_list(page_size=100)
    assert len(rows) == 100 and cursor
    assert rows[0].employee == zhang and rows[0].customer == customers[0]
    more, cursor = unassigned_list(page_size=100, cursor=cursor)
    assert cursor == "" and len(more) == N + 1 - 100
    unknown = next(r for r in more if r.external_userid == "wmUNKNOWN")
    assert unknown.customer is None and unknown.employee == zhang


def test_a_batch_whose_answer_was_lost_is_not_sent_again_and_polling_settles_it(
        wecom_fake, people, django_capture_on_commit_callbacks):
    """The worker died after WeCom took the call, before it stored the answer."""
    from wecom.transfers import wecom_transfer_send

    sim = wecom_fake
    zhang, lina, customers = people
    sim.state.users["zhangwei"].status = 5
    with django_capture_on_commit_callbacks(execute=True):
        transfer = transfer_start(actor=HR, from_employee=zhang, to_employees=[lina],
                                  customer_ids=[c.pk for c in customers[:3]])
    WeComTransferItem.objects.filter(transfer=transfer).update(errcode=None)  # the answer never stored
    sim.clear_calls()
    assert wecom_transfer_send(transfer_id=transfer.pk) == 0
    assert not sim.calls("externalcontact/resigned/transfer_customer")
    poll_transfers.apply()
    items = WeComTransferItem.objects.filter(transfer=transfer)
    assert set(items.values_list("errcode", "status")) == {(0, 2)}


def test_the_pending_departures_page_shows_what_wecom_still_lists(wecom_fake, people, admin_user):
    """待分配离职成员: beside the portal's own count, the customers WeCom lists as unassigned."""
    from django.core.cache import cache

    sim = wecom_fake
    zhang, _lina, _customers = people
    sim.state.users["zhangwei"].status = 5
    zhang.status = "departed"
    zhang.save()
    cache.clear()
    html = login(admin_user).get(reverse("admin:customers_transfer_pending")).content.decode()
    assert "zhangwei" in html and str(N) in html
    from wecom.transfers import unassigned_counts_source

    assert unassigned_counts_source() == {"zhangwei": N}
    assert len(sim.calls("externalcontact/get_unassigned_list")) == 1  # one page of ≤1000, then cached a minute
