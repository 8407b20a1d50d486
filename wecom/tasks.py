"""Celery tasks of the wecom app: thin, a service call each."""

from __future__ import annotations

from celery import shared_task

from . import services

BATCH = 500


@shared_task(name="wecom.process_events", acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def process_events() -> int:
    """Process the events waiting (queued after each callback). A full batch queues another run."""
    done = services.wecom_events_process(limit=BATCH)
    if done >= BATCH:
        process_events.delay()
    return done


@shared_task(name="wecom.retry_events", ignore_result=True)
def retry_events() -> int:
    """Periodic (Celery beat): failed events that are due for a retry, and any pending event whose
    queued run was lost (a broker outage when it arrived)."""
    return services.wecom_events_process(limit=BATCH)
