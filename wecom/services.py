"""Writes of the wecom app: storing events from the callback, processing them, retrying them.

Processing takes one event at a time in its own transaction: the next event (lowest id) whose
`order_key` has no earlier open event, locked with `SKIP LOCKED` so several workers share the
work without ever running two events of one customer at once. The handler's writes and the
event's new status commit together, so a worker killed mid-event leaves it pending, unchanged,
and the next run processes it exactly once.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from tagportal.errors import Conflict

from .client import redact
from .events import dedupe_key, handler_for, parse_event
from .models import EventStatus, WeComEvent

logger = logging.getLogger(__name__)

MAX_ERROR_LENGTH = 2000


def _max_attempts() -> int:
    return int(getattr(settings, "WECOM_EVENT_MAX_ATTEMPTS", 10))


def _retry_base_seconds() -> float:
    return float(getattr(settings, "WECOM_EVENT_RETRY_SECONDS", 30))


def retry_delay(attempts: int) -> timedelta:
    """Backoff after the n-th failed attempt: base × 2^(n-1), at most an hour."""
    return timedelta(seconds=min(_retry_base_seconds() * 2 ** max(attempts - 1, 0), 3600))


def _create_time(value) -> datetime | None:
    try:
        seconds = int(value)
    except (TypeError, ValueError):
        return None
    if not 0 < seconds < 2**32:
        return None
    return datetime.fromtimestamp(seconds, tz=UTC)


def order_key(fields: dict) -> str:
    """Events of one customer are processed in order; others in order of their kind."""
    external_userid = fields.get("ExternalUserID")
    if isinstance(external_userid, str) and external_userid:
        return f"c:{external_userid}"[:80]
    return f"e:{fields.get('Event', '')}"[:80]


def _text(fields: dict, key: str, limit: int = 64) -> str:
    value = fields.get(key)
    return value[:limit] if isinstance(value, str) else ""


@transaction.atomic
def wecom_event_receive(*, xml: str) -> tuple[WeComEvent, bool]:
    """Store one decrypted event (企业微信回调事件) and queue its processing once committed.

    Returns (event, created); a WeCom retry of the same content returns the stored event and
    queues nothing new. Raises `EventParseError` for XML that is not an event (nothing stored).
    """
    fields = parse_event(xml)
    key = dedupe_key(xml)
    existing = WeComEvent.objects.filter(dedupe_key=key).first()
    if existing is not None:
        return existing, False
    event = WeComEvent(
        dedupe_key=key,
        event=_text(fields, "Event"),
        change_type=_text(fields, "ChangeType"),
        external_userid=_text(fields, "ExternalUserID"),
        userid=_text(fields, "UserID"),
        order_key=order_key(fields),
        create_time=_create_time(fields.get("CreateTime")),
        payload=fields,
        raw=xml,
    )
    try:
        with transaction.atomic():
            event.save()
    except IntegrityError:  # the same delivery, stored by a concurrent request a moment ago
        return WeComEvent.objects.get(dedupe_key=key), False
    transaction.on_commit(_queue_processing)
    return event, True


def _queue_processing() -> None:
    from .tasks import process_events

    try:
        process_events.delay()
    except Exception:  # noqa: BLE001 - the broker is down: the event is stored, retry_events picks it up
        logger.exception("could not queue wecom.process_events; the periodic retry will process the event")


def _open_q(now) -> Q:
    """Events that may run now: pending, or failed and due for a retry."""
    return Q(status=EventStatus.PENDING) | Q(status=EventStatus.FAILED, next_attempt_at__lte=now)


def _blocking_q() -> Q:
    """Events that hold back later ones of their key: pending, or failed and still to be retried."""
    return Q(status=EventStatus.PENDING) | Q(status=EventStatus.FAILED, next_attempt_at__isnull=False)


def _next_event(now) -> WeComEvent | None:
    earlier_open = WeComEvent.objects.filter(_blocking_q(), order_key=OuterRef("order_key"), id__lt=OuterRef("pk"))
    return (
        WeComEvent.objects.filter(_open_q(now))
        .filter(~Exists(earlier_open))
        .order_by("id")
        .select_for_update(skip_locked=True, of=("self",))
        .first()
    )


def wecom_event_process_next(*, now=None) -> WeComEvent | None:
    """Process the next eligible event in its own transaction; None when there is none."""
    with transaction.atomic():
        event = _next_event(now or timezone.now())
        if event is None:
            return None
        _process(event)
        return event


def _process(event: WeComEvent) -> None:
    handler = handler_for(event.event, event.change_type)
    now = timezone.now()
    if handler is None:
        event.status = EventStatus.IGNORED
        event.processed_at = now
        event.next_attempt_at = None
        event.save(update_fields=["status", "processed_at", "next_attempt_at"])
        return
    event.attempts += 1
    try:
        with transaction.atomic():  # a savepoint: the handler's writes go if it fails
            handler(event)
    except Exception as exc:  # noqa: BLE001 - any failure is kept on the event and retried
        event.status = EventStatus.FAILED
        event.error = redact(f"{type(exc).__name__}: {exc}")[:MAX_ERROR_LENGTH]
        event.next_attempt_at = None if event.attempts >= _max_attempts() else now + retry_delay(event.attempts)
        logger.warning(
            "WeCom event %s (%s/%s) failed, attempt %s: %s",
            event.pk, event.event, event.change_type, event.attempts, type(exc).__name__,
        )
    else:
        event.status = EventStatus.DONE
        event.error = ""
        event.next_attempt_at = None
        event.processed_at = timezone.now()
    event.save(update_fields=["status", "attempts", "error", "next_attempt_at", "processed_at"])


def wecom_events_process(*, limit: int = 500) -> int:
    """Process eligible events one by one (each in its own transaction), at most `limit`. An event
    that fails during this run waits for its backoff, even a zero one: no tight retry loop."""
    started = timezone.now()
    count = 0
    while count < limit and wecom_event_process_next(now=started) is not None:
        count += 1
    return count


def wecom_events_backlog() -> int:
    """Events that can run now (pending, or failed and due)."""
    return WeComEvent.objects.filter(_open_q(timezone.now())).count()


@transaction.atomic
def wecom_event_retry(*, event: WeComEvent | int) -> WeComEvent:
    """重试: put a failed event back to pending at once (also one given up after its retries);
    its attempts and last error are kept. Queues processing after commit."""
    pk = event.pk if isinstance(event, WeComEvent) else event
    event = WeComEvent.objects.select_for_update().get(pk=pk)
    if event.status != EventStatus.FAILED:
        raise Conflict(_("只有失败的事件可以重试。"), details={"event": event.pk, "status": event.status})
    event.status = EventStatus.PENDING
    event.next_attempt_at = None
    event.save(update_fields=["status", "next_attempt_at"])
    transaction.on_commit(_queue_processing)
    return event
