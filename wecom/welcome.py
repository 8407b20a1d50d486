"""发送新客户欢迎语: after a customer adds an employee through an enabled channel code that has a
welcome message, send it with `externalcontact/send_welcome_msg` and the event's WelcomeCode.

WeCom accepts a welcome code once, within 20 seconds of the event, and only when no other app
used it first (41051 "already chatting": done, nothing to retry; 41096 "another app is sending",
which may still fail: retried within the window). So the message is sent
at most once: after the event's transaction commits (a rolled-back event sends nothing; its retry
comes too late for the code anyway), and not at all when the event is older than the window.
The outcome is kept on the event (`payload["welcome"]`) for the status page.
"""

from __future__ import annotations

import logging
import time

from django.db import transaction
from django.utils import timezone

from channels.models import ChannelCode

from .client import WeComClient, WeComError
from .models import WeComEvent

logger = logging.getLogger(__name__)

WELCOME_WINDOW_SECONDS = 20
WELCOME_MAX_BYTES = 4000  # text.content limit
ALREADY_CHATTING = 41051  # the welcome went out (another app's, or ours): nothing to retry
ANOTHER_APP_SENDING = 41096  # another app is sending it right now and may still fail: retry
RETRY_PAUSE = 1.0


def welcome_message_for(state: str) -> str:
    """The welcome message of the enabled channel code with this state ("" when none)."""
    if not state:
        return ""
    message = (
        ChannelCode.objects.filter(state=state, enabled=True).values_list("welcome_message", flat=True).first()
    )
    return (message or "").strip()


def _fit(text: str) -> str:
    data = text.encode("utf-8")[:WELCOME_MAX_BYTES]
    return data.decode("utf-8", "ignore")


def send_after_commit(*, event: WeComEvent, state: str, welcome_code: str) -> bool:
    """Queue the welcome message for after the event commits; False when there is none to send."""
    text = welcome_message_for(state)
    if not text or not welcome_code:
        return False
    event_id = event.pk
    received_at = event.received_at
    transaction.on_commit(lambda: _send(event_id, received_at, welcome_code, _fit(text)))
    return True


def _record(event_id: int, outcome: dict) -> None:
    event = WeComEvent.objects.filter(pk=event_id).first()
    if event is not None:
        event.payload = {**(event.payload or {}), "welcome": outcome}
        event.save(update_fields=["payload"])


def _age(received_at) -> float:
    return (timezone.now() - received_at).total_seconds()


def _send(event_id: int, received_at, welcome_code: str, text: str) -> None:
    if _age(received_at) > WELCOME_WINDOW_SECONDS:
        _record(event_id, {"sent": False, "reason": "expired", "age": round(_age(received_at), 1)})
        return
    client = WeComClient(retries=1, backoff=0.5)
    while True:
        try:
            client.post("externalcontact/send_welcome_msg", {"welcome_code": welcome_code, "text": {"content": text}})
        except WeComError as exc:
            # 41096: another app is sending with this code and may still fail: WeCom says try again.
            if exc.errcode == ANOTHER_APP_SENDING and _age(received_at) + RETRY_PAUSE < WELCOME_WINDOW_SECONDS:
                time.sleep(RETRY_PAUSE)
                continue
            logger.warning("WeCom welcome message for event %s not sent: errcode %s", event_id, exc.errcode)
            _record(event_id, {"sent": False, "errcode": exc.errcode, "errmsg": exc.errmsg[:200]})
            return
        _record(event_id, {"sent": True})
        return
