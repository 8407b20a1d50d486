"""Celery tasks of the rules app: thin. `rules.match_messages` drains the matching queue; a worker
that starts queues it once, so messages left by a killed worker are matched without waiting for the
next ingest."""

from __future__ import annotations

import logging

from celery import shared_task
from celery.signals import worker_ready

logger = logging.getLogger(__name__)


@shared_task(name="rules.match_messages", acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def match_messages() -> int:
    """Match every queued message (safe to run twice at once: batches are exclusive)."""
    from .matching import messages_match_pending

    return messages_match_pending()


@worker_ready.connect
def _resume_matching_on_start(sender=None, **kwargs) -> None:
    try:
        match_messages.delay()
    except Exception:  # noqa: BLE001 - a worker must start even if the broker hiccups
        logger.exception("could not queue rules.match_messages on worker start")
