"""A customer scans a channel code (渠道活码) in WeCom: the add event brings the code's tags through
the relation-added hook, and the code's welcome message goes out once with the event's WelcomeCode."""

from __future__ import annotations

from datetime import timedelta

import pytest

from channels.services import channel_code_create
from customers.models import Customer, TagEvent, TagSource
from org.actors import Actor
from tests.factories import EmployeeFactory, make_tag_group
from tests.wecom.conftest import post_event
from wecom.models import EventStatus, WeComEvent
from wecom.services import wecom_events_process

pytestmark = pytest.mark.django_db

WELCOME = "您好，欢迎来到我们的车展展台！"


@pytest.fixture
def expo(wecom_fake, django_capture_on_commit_callbacks):
    EmployeeFactory(userid="zhangwei", name="张伟")
    wecom_fake.state.add_user("zhangwei", "张伟")  # in WeCom too: the code becomes a contact way there
    _group, (expo_tag,) = make_tag_group("来源", tags=["车展"])
    with django_capture_on_commit_callbacks(execute=True):
        code = channel_code_create(actor=Actor(label="test"), data={
            "name": "2026 车展", "state": "expo2026", "employees": ["zhangwei"], "tags": [expo_tag.pk],
            "welcome_message": WELCOME})
    return code, expo_tag


def arrive(sim, capture, *, state="expo2026", welcome=True, external_userid="wmEXPO"):
    contact, follower, code = sim.state.add_contact(userid="zhangwei", external_userid=external_userid,
                                                    name="王女士", state=state, welcome_code=welcome)
    with capture(execute=True):
        assert post_event(sim, sim.add_contact_event(contact, follower, code)).content == b"success"
        wecom_events_process()
    return code


def test_channel_tags_and_welcome_message(wecom_fake, expo, django_capture_on_commit_callbacks):
    _code, expo_tag = expo
    welcome_code = arrive(wecom_fake, django_capture_on_commit_callbacks)
    customer = Customer.objects.get(external_userid="wmEXPO")
    assert list(customer.tags.all()) == [expo_tag]
    assert TagEvent.objects.get(customer=customer).source == TagSource.CHANNEL
    assert wecom_fake.state.welcome_messages == [
        {"welcome_code": welcome_code, "userid": "zhangwei", "external_userid": "wmEXPO", "text": WELCOME,
         "attachments": []}]
    event = WeComEvent.objects.get()
    assert event.status == EventStatus.DONE and event.payload["welcome"] == {"sent": True}


def test_no_welcome_without_a_code_or_for_a_disabled_channel(wecom_fake, expo, django_capture_on_commit_callbacks):
    code, _tag = expo
    arrive(wecom_fake, django_capture_on_commit_callbacks, welcome=False, external_userid="wmNOCODE")
    arrive(wecom_fake, django_capture_on_commit_callbacks, state="", external_userid="wmNOSTATE")
    code.enabled = False
    code.save(update_fields=["enabled"])
    arrive(wecom_fake, django_capture_on_commit_callbacks, external_userid="wmDISABLED")
    assert wecom_fake.calls("externalcontact/send_welcome_msg") == []
    assert Customer.objects.count() == 3


def test_welcome_code_used_by_another_app_is_recorded_not_retried(wecom_fake, expo, django_capture_on_commit_callbacks):
    wecom_fake.fail("externalcontact/send_welcome_msg", 41051, times=1)
    arrive(wecom_fake, django_capture_on_commit_callbacks)
    event = WeComEvent.objects.get()
    assert event.status == EventStatus.DONE  # the customer arrived all the same
    assert event.payload["welcome"]["errcode"] == 41051
    assert len(wecom_fake.calls("externalcontact/send_welcome_msg")) == 1


def test_a_late_event_sends_no_welcome(wecom_fake, expo, django_capture_on_commit_callbacks, settings):
    """Processed after WeCom's 20-second window (a retry, a backlog): no call WeCom would refuse."""
    contact, follower, code = wecom_fake.state.add_contact(userid="zhangwei", external_userid="wmLATE",
                                                           state="expo2026")
    post_event(wecom_fake, wecom_fake.add_contact_event(contact, follower, code))
    event = WeComEvent.objects.get()
    WeComEvent.objects.filter(pk=event.pk).update(received_at=event.received_at - timedelta(seconds=30))
    with django_capture_on_commit_callbacks(execute=True):
        wecom_events_process()
    event.refresh_from_db()
    assert event.payload["welcome"]["reason"] == "expired"
    assert wecom_fake.calls("externalcontact/send_welcome_msg") == []


def test_an_edit_never_sends_the_welcome_again(wecom_fake, expo, django_capture_on_commit_callbacks):
    arrive(wecom_fake, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        post_event(wecom_fake, wecom_fake.contact_event("edit_external_contact", userid="zhangwei",
                                                        external_userid="wmEXPO", WelcomeCode="WELCOMEx"))
        wecom_events_process()
    assert len(wecom_fake.calls("externalcontact/send_welcome_msg")) == 1


def test_another_app_sending_is_retried_within_the_window(wecom_fake, expo, django_capture_on_commit_callbacks):
    """41096: another app holds the code right now and may still fail; WeCom's docs say retry."""
    wecom_fake.fail("externalcontact/send_welcome_msg", 41096, times=1)
    arrive(wecom_fake, django_capture_on_commit_callbacks)
    assert [c.errcode for c in wecom_fake.calls("externalcontact/send_welcome_msg")] == [41096, 0]
    assert WeComEvent.objects.get().payload["welcome"] == {"sent": True}
    assert len(wecom_fake.state.welcome_messages) == 1
