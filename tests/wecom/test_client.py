"""The WeCom API client against the simulator over real HTTP: token cache and refresh, typed
errors, retries with backoff, timeouts, and no secret or token in any log line."""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time

import pytest

from wecom.client import (
    WeComClient,
    WeComError,
    WeComNotConfigured,
    WeComRetryableError,
    WeComTokenError,
    WeComTransportError,
)


@pytest.fixture
def client(wecom_fake):
    return WeComClient(backoff=0.01)


def test_get_answers_the_json_and_the_token_is_cached(client, wecom_fake):
    wecom_fake.state.add_contact(userid="zhangwei", external_userid="wmA", name="王女士", state="expo")
    data = client.get("externalcontact/get", external_userid="wmA")
    assert data["external_contact"]["name"] == "王女士"
    assert data["follow_user"][0]["state"] == "expo"
    client.get("externalcontact/get", external_userid="wmA")
    WeComClient().get("externalcontact/get", external_userid="wmA")  # another client, same cache
    assert len(wecom_fake.calls("gettoken")) == 1
    assert len(wecom_fake.calls("externalcontact/get")) == 3


def test_expired_token_is_refreshed_once(client, wecom_fake):
    wecom_fake.state.add_contact(userid="zhangwei", external_userid="wmA")
    client.get("externalcontact/get", external_userid="wmA")
    wecom_fake.expire_tokens()
    assert client.get("externalcontact/get", external_userid="wmA")["external_contact"]["external_userid"] == "wmA"
    assert len(wecom_fake.calls("gettoken")) == 2


def test_invalid_token_twice_raises_a_token_error(client, wecom_fake):
    wecom_fake.state.add_contact(userid="zhangwei", external_userid="wmA")
    wecom_fake.fail("externalcontact/get", 40014, times=2)
    with pytest.raises(WeComTokenError) as exc:
        client.get("externalcontact/get", external_userid="wmA")
    assert exc.value.errcode == 40014
    assert len(wecom_fake.calls("gettoken")) == 2  # refreshed once, not in a loop


def test_busy_and_rate_limits_are_retried_with_backoff(client, wecom_fake):
    wecom_fake.state.add_contact(userid="zhangwei", external_userid="wmA")
    wecom_fake.fail("externalcontact/get", -1, times=1)
    wecom_fake.fail("externalcontact/get", 45009, times=1)
    assert client.get("externalcontact/get", external_userid="wmA")["errcode"] == 0
    assert [c.errcode for c in wecom_fake.calls("externalcontact/get")] == [-1, 45009, 0]


def test_retries_give_up_with_a_retryable_error(wecom_fake):
    wecom_fake.state.add_contact(userid="zhangwei", external_userid="wmA")
    wecom_fake.fail("externalcontact/get", 45033, times=10)
    started = time.monotonic()
    with pytest.raises(WeComRetryableError) as exc:
        WeComClient(retries=2, backoff=0.05).get("externalcontact/get", external_userid="wmA")
    assert exc.value.errcode == 45033 and exc.value.retryable
    assert len(wecom_fake.calls("externalcontact/get")) == 3
    assert time.monotonic() - started >= 0.05 + 0.1  # backoff 0.05, then 0.1


def test_other_errcodes_raise_typed_errors_at_once(client, wecom_fake):
    with pytest.raises(WeComError) as exc:
        client.get("externalcontact/get", external_userid="wmNobody")
    assert exc.value.errcode == 84061 and not exc.value.retryable
    with pytest.raises(WeComError) as exc:
        client.get("externalcontact/get")
    assert exc.value.errcode == 41035
    assert len(wecom_fake.calls("externalcontact/get")) == 2


def test_wrong_secret_is_a_token_error(wecom_fake):
    with pytest.raises(WeComTokenError) as exc:
        WeComClient(secret="wrong").get("externalcontact/get", external_userid="wmA")
    assert exc.value.errcode == 40001


def test_not_configured(settings):
    settings.WECOM_CORP_ID = ""
    settings.WECOM_SECRET = ""
    with pytest.raises(WeComNotConfigured):
        WeComClient().get("externalcontact/get", external_userid="wmA")


def test_post_sends_json(client, wecom_fake):
    wecom_fake.state.add_user("zhangwei")
    wecom_fake.state.add_contact(userid="zhangwei", external_userid="wmA")
    data = client.post("externalcontact/batch/get_by_user", {"userid_list": ["zhangwei"], "limit": 10})
    assert data["external_contact_list"][0]["follow_info"]["userid"] == "zhangwei"
    with pytest.raises(WeComError) as exc:
        client.post("externalcontact/batch/get_by_user", {"userid_list": ["zhangwei"], "limit": 1000})
    assert exc.value.errcode == 40058


def test_timeouts_everywhere():
    """A server that accepts and never answers: the client gives up within its timeout."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    port = listener.getsockname()[1]
    held = []
    stop = threading.Event()

    def accept():
        listener.settimeout(0.2)
        while not stop.is_set():
            with contextlib.suppress(OSError):
                held.append(listener.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        client = WeComClient(corp_id="c", secret="s", api_base=f"http://127.0.0.1:{port}/cgi-bin",
                             timeout=0.3, retries=1, backoff=0.01)
        started = time.monotonic()
        with pytest.raises(WeComTransportError):
            client.get("externalcontact/get", external_userid="wmA")
        assert time.monotonic() - started < 3
    finally:
        stop.set()
        thread.join(2)
        for conn in held:
            conn.close()
        listener.close()


def test_no_secret_or_token_in_any_log_line(wecom_fake, caplog):
    caplog.set_level(logging.DEBUG)
    wecom_fake.state.add_contact(userid="zhangwei", external_userid="wmA")
    client = WeComClient(backoff=0.01)
    client.get("externalcontact/get", external_userid="wmA")
    wecom_fake.expire_tokens()
    wecom_fake.fail("externalcontact/get", -1, times=1)
    client.get("externalcontact/get", external_userid="wmA")
    wecom_fake.fail("externalcontact/get", 40014, times=2)
    with pytest.raises(WeComError) as exc:
        client.get("externalcontact/get", external_userid="wmA")
    tokens = list(wecom_fake.state.tokens)
    assert tokens
    secret = wecom_fake.state.secret
    text = "\n".join(r.getMessage() for r in caplog.records) + str(exc.value)
    assert caplog.records, "the client logs what it does"
    assert "HTTP Request" in text  # httpx's own request log went through (redacted)
    assert secret not in text
    for token in tokens:
        assert token not in text
