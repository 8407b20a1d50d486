"""Celery tasks of the customers app: thin, ids in, a service call. Plus the worker-side recovery
of jobs whose worker died (see `customers.jobs`)."""

from __future__ import annotations

import logging

from celery import shared_task
from celery.signals import worker_ready
from django.db import connection

from . import jobs

logger = logging.getLogger(__name__)


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True, bind=True)
def job_run(self, job_id: int) -> str | None:
    """Run or resume one job. Safe to deliver twice: the claim lets one run own the job."""
    eager = bool(self.request.is_eager)
    return jobs.job_execute(job_id=job_id, node="" if eager else (self.request.hostname or ""),
                            threaded_heartbeat=not eager)


@shared_task(ignore_result=True)
def jobs_requeue_stale() -> list[int]:
    """Re-queue jobs left `running` by a dead worker; celery beat sends it every 15 s (settings)."""
    return jobs.jobs_requeue_stale()


@worker_ready.connect
def _recover_jobs_on_start(sender=None, **kwargs) -> None:
    """A (re)started worker re-queues at once the jobs its previous incarnation left running, and
    any job with a stale heartbeat. Later checks are celery beat's (`requeue-stale-jobs` in settings)."""
    node = getattr(sender, "hostname", "") or ""
    try:
        requeued = jobs.jobs_requeue_stale(node=node, boot=jobs.WORKER_BOOT)
        if requeued:
            logger.warning("worker %s re-queued jobs %s", node, requeued)
    except Exception:  # noqa: BLE001 - a worker must start even if the check fails
        logger.exception("stale job recovery failed on worker start")
    finally:
        connection.close()
