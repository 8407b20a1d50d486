"""Celery tasks of the customers app: thin, ids in, a service call. Plus the worker-side recovery
of jobs whose worker died (see `customers.jobs`)."""

from __future__ import annotations

import logging
import threading

from celery import shared_task
from celery.signals import worker_ready, worker_shutdown
from django.db import close_old_connections, connection

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
    """Re-queue jobs left `running` by a dead worker (also safe to schedule with celery beat)."""
    return jobs.jobs_requeue_stale()


class _StaleJobWatch(threading.Thread):
    """In each worker: look for jobs orphaned by dead workers every JOB_STALE_SECONDS / 2."""

    def __init__(self):
        super().__init__(name="stale-job-watch", daemon=True)
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(max(jobs.JOB_STALE_SECONDS / 2, 1)):
            try:
                close_old_connections()
                jobs.jobs_requeue_stale()
            except Exception:  # noqa: BLE001 - keep watching
                logger.exception("stale job check failed")
            finally:
                # Never keep a connection open in the parent of a prefork pool.
                connection.close()


_watch: _StaleJobWatch | None = None


@worker_ready.connect
def _recover_jobs_on_start(sender=None, **kwargs) -> None:
    """A (re)started worker re-queues at once the jobs its previous incarnation left running,
    and any job with a stale heartbeat; then keeps checking periodically."""
    global _watch
    node = getattr(sender, "hostname", "") or ""
    try:
        requeued = jobs.jobs_requeue_stale(node=node, boot=jobs.WORKER_BOOT)
        if requeued:
            logger.warning("worker %s re-queued jobs %s", node, requeued)
    except Exception:  # noqa: BLE001 - a worker must start even if the check fails
        logger.exception("stale job recovery failed on worker start")
    finally:
        connection.close()
    if _watch is None:
        _watch = _StaleJobWatch()
        _watch.start()


@worker_shutdown.connect
def _stop_watch(**kwargs) -> None:
    if _watch is not None:
        _watch.stopped.set()
