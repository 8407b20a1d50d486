"""Rule 17, inbound, found in review: the crypto checks no other test would miss if they loosened."""

from __future__ import annotations

import pytest

from tests.wecom.test_crypto import body, crypto, raw_encrypt  # noqa: F401 - the fixture
from wecom.crypto import DecryptError


def test_a_pad_longer_than_wecoms_32_bytes_is_refused_even_when_consistent(crypto):  # noqa: F811
    """WeCom pads to 32 bytes: 48 bytes of 0x30 is consistent PKCS#7 but never WeCom's padding."""
    message = body(b"hello")
    message += b"R" * (-len(message) % 16)  # whole AES blocks before the pad
    with pytest.raises(DecryptError) as exc:
        crypto.decrypt(raw_encrypt(crypto, message + bytes([48]) * 48))
    assert exc.value.reason == "bad_padding"


@pytest.mark.parametrize("junk", ["!", "\n", " ", "*"])
def test_ciphertext_with_characters_outside_base64_is_refused_not_skipped(crypto, junk):  # noqa: F811
    good = crypto.encrypt("<xml><Event>x</Event></xml>")
    assert crypto.decrypt(good) == b"<xml><Event>x</Event></xml>"
    with pytest.raises(DecryptError) as exc:
        crypto.decrypt(good[:20] + junk + good[20:])
    assert exc.value.reason == "not_base64"


@pytest.fixture
def partial_handler():
    """An event kind whose handler writes through the services, then fails."""
    from customers.services import customer_upsert
    from org.actors import Actor
    from wecom.events import _handlers, event_handler

    @event_handler("tagportal_test_partial")
    def half_done(event) -> None:
        customer_upsert(actor=Actor(label="企业微信"), data={"external_userid": event.external_userid})
        raise RuntimeError("WeCom answered half way")

    try:
        yield
    finally:
        _handlers.pop(("tagportal_test_partial", None), None)


def _store(xml: str):
    from wecom.services import wecom_event_receive

    event, created = wecom_event_receive(xml=xml)
    assert created
    return event


@pytest.mark.django_db
def test_a_failed_event_leaves_none_of_its_writes_and_is_kept_for_a_retry(partial_handler, settings):
    from customers.models import Customer
    from wecom.models import EventStatus
    from wecom.services import wecom_events_process

    settings.WECOM_EVENT_RETRY_SECONDS = 30
    event = _store("<xml><Event>tagportal_test_partial</Event><ExternalUserID>wmHALF</ExternalUserID></xml>")
    wecom_events_process()
    event.refresh_from_db()
    assert event.status == EventStatus.FAILED and "half way" in event.error and event.next_attempt_at
    assert not Customer.objects.filter(external_userid="wmHALF").exists()


@pytest.mark.django_db
def test_the_retry_delay_doubles_after_each_failure(partial_handler, settings):
    from wecom.services import wecom_events_process

    settings.WECOM_EVENT_RETRY_SECONDS = 30
    settings.WECOM_EVENT_MAX_ATTEMPTS = 5
    event = _store("<xml><Event>tagportal_test_partial</Event><ExternalUserID>wmBACKOFF</ExternalUserID></xml>")
    delays = []
    for _attempt in range(3):
        type(event).objects.filter(pk=event.pk).update(next_attempt_at=event.received_at)  # due now
        before = __import__("django.utils.timezone", fromlist=["now"]).now()
        wecom_events_process()
        event.refresh_from_db()
        delays.append(round((event.next_attempt_at - before).total_seconds()))
    assert [d // 10 * 10 for d in delays] == [30, 60, 120]
