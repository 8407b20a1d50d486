"""Celery tasks of the outbound sync: thin, a service call each.

- `wecom.push_outbox`: corp-tag pushes, then the tag outbox (collect + push) until nothing is due
  or `PUSH_SECONDS` have passed; queued on commit by taxonomy changes and run by celery beat.
- `wecom.poll_transfers`: WeCom's `transfer_result` for transfers not yet ended (celery beat).
- `wecom.send_transfer`: hand a portal transfer's customers over in WeCom (queued on commit).
"""

from __future__ import annotations

import logging
import time
from contextlib import contextmanager

from celery import shared_task
from django.db import connection

from . import conf

logger = logging.getLogger(__name__)

PUSH_SECONDS = 30


@shared_task(name="wecom.push_outbox", ignore_result=True, bind=True)
def push_outbox(self) -> dict:
    if not conf.api_configured():
        return {}
    from customers.jobs import WORKER_BOOT

    node = "" if self.request.is_eager else (self.request.hostname or "")
    with _single_pusher() as alone:
        if not alone:
            return {"skipped": "another push is running"}
        return _push(node, WORKER_BOOT)


@contextmanager
def _single_pusher():
    """One pusher at a time (beat fires every few seconds, a push may take longer): a PostgreSQL
    session advisory lock, released when the pass ends or its worker dies."""
    if connection.vendor != "postgresql":
        yield True
        return
    with connection.cursor() as cur:
        cur.execute("SELECT pg_try_advisory_lock(hashtext('wecom.push_outbox'))")
        alone = cur.fetchone()[0]
    try:
        yield alone
    finally:
        if alone:
            with connection.cursor() as cur:
                cur.execute("SELECT pg_advisory_unlock(hashtext('wecom.push_outbox'))")


def _push(node: str, boot: str) -> dict:
    from . import outbox, taxonomy

    api = taxonomy.client()
    totals = {"taxonomy": 0, "events": 0, "calls": 0, "done": 0, "failed": 0}
    deadline = time.monotonic() + PUSH_SECONDS
    try:
        totals["taxonomy"] = taxonomy.taxonomy_push_pending(api=api).done
        while time.monotonic() < deadline:
            collected = outbox.outbox_collect()
            pushed = outbox.outbox_push(api=api, node=node, boot=boot)
            totals["events"] += collected.events
            totals["calls"] += pushed.calls
            totals["done"] += pushed.done
            totals["failed"] += pushed.failed + pushed.retried
            if not collected.events and not pushed.claimed:
                break
        outbox.outbox_prune()
    finally:
        api.close()
    return totals


@shared_task(name="wecom.poll_transfers", ignore_result=True)
def poll_transfers() -> int:
    if not conf.api_configured():
        return 0
    from .transfers import wecom_transfers_poll

    return wecom_transfers_poll()


@shared_task(name="wecom.send_transfer", ignore_result=True, acks_late=True)
def send_transfer(transfer_id: int) -> int:
    if not conf.api_configured():
        return 0
    from .transfers import wecom_transfer_send

    return wecom_transfer_send(transfer_id=transfer_id)


@shared_task(name="wecom.sync_contact_way", ignore_result=True, bind=True, max_retries=8)
def sync_contact_way(self, code_id: int) -> str:
    """Create or update a code's contact way; WeCom busy or unreachable: retried with backoff (on a
    worker); refused: logged (the code keeps working in the portal, without WeCom's QR code)."""
    if not conf.api_configured():
        return ""
    from .client import WeComError
    from .contact_ways import contact_way_sync

    try:
        return contact_way_sync(code_id=code_id)
    except WeComError as exc:
        if exc.retryable and not self.request.is_eager:
            raise self.retry(exc=exc, countdown=min(5 * 2 ** self.request.retries, 600)) from exc
        logger.warning("contact way of channel code %s not synced: %s", code_id, exc)
        return ""


@shared_task(name="wecom.delete_contact_way", ignore_result=True, bind=True, max_retries=8)
def delete_contact_way(self, config_id: str) -> bool:
    if not conf.api_configured():
        return False
    from .client import WeComError
    from .contact_ways import contact_way_delete

    try:
        return contact_way_delete(config_id=config_id)
    except WeComError as exc:
        if exc.retryable and not self.request.is_eager:
            raise self.retry(exc=exc, countdown=min(5 * 2 ** self.request.retries, 600)) from exc
        logger.warning("contact way %s not deleted in WeCom: %s", config_id, exc)
        return False
