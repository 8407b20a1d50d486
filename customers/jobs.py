"""后台任务 (jobs): long operations run by Celery in chunks, with live progress, cancel, resume and undo.

A `Job` row is the whole state of a long operation: kind, params (JSON), actor, status,
total/done, failed items with reasons, counts, a log, and a `cursor` saying where to resume.
`job_create` saves the row and queues `tasks.job_run(job.id)` on commit (inline in eager mode).
`job_execute` (what the task calls) claims the job, then loops over chunks:

* each chunk runs in **its own transaction**, and the job's progress (`done`, `cursor`, counts,
  errors, `heartbeat_at`) is written **in that same transaction**. A worker killed mid-chunk
  loses the chunk's work *and* its progress together, so a restarted run redoes exactly that
  chunk: nothing is applied twice, nothing is missed;
* a job has one owner at a time: claiming is a compare-and-set on `status`/`heartbeat_at` that
  writes a fresh run token into `Job.worker`; each chunk re-reads the job row `FOR UPDATE` before
  committing and rolls back if another run has taken over (so a run wrongly presumed dead can
  never commit work twice);
* `cancel_requested` is honoured between chunks; chunk size adapts so that a chunk takes about
  `JOB_CHUNK_SECONDS` (0.4 s), and in a real worker a heartbeat thread refreshes `heartbeat_at`
  every `JOB_HEARTBEAT_SECONDS` (0.5 s) even while a slow chunk runs;
* chunk transactions commit with `synchronous_commit = off` (PostgreSQL): a database crash can lose
  the last few chunks' commits, but their work and their progress together, so the resumed job
  redoes them; nothing is half-applied;
* a worker that died (SIGKILL, OOM, machine lost) leaves its job `running` with a stale heartbeat.
  `jobs_requeue_stale()` re-queues such jobs; it runs when a worker starts (`worker_ready`,
  which also recovers at once the jobs of this worker's previous incarnation) and every
  `JOB_STALE_SECONDS / 2` in every worker (see `customers/tasks.py`).

How a new job kind plugs in (TRANSFER does this)
------------------------------------------------
1. Add the kind to `JobKind` in `customers/models.py` (`makemigrations` if the choices changed).
2. Subclass `JobHandler` and register it::

       from customers.jobs import Chunk, JobHandler, job_handler

       @job_handler(JobKind.TRANSFER)
       class TransferJob(JobHandler):
           chunk_size = 200            # first chunk's size; later ones adapt to ~0.4 s
           undoable = False            # True: job_undo() may start an UNDO job for it

           def prepare(self, job):     # optional; each (re)start, outside any chunk transaction
               return Transfer.objects.get(job=job).items.count()   # the total (None: keep job.total)

           def run_chunk(self, job, cursor, size):
               # Inside the chunk's transaction. Do at most `size` items after `cursor`
               # (or the next `size` items still pending, for per-item state) and return
               # Chunk(done=..., cursor=..., failed=[{...}, ...], counts={"moved": 3}),
               # or None when nothing is left. Must be idempotent per item: a chunk whose
               # transaction rolled back is simply run again.
               ...

           def finish(self, job):      # optional; in the transaction that marks it succeeded
               ...

           def result(self, job):      # optional; what the API shows as the job's `result`
               ...

3. Start it with `job_create(kind=JobKind.TRANSFER, actor=actor, params={...}, total=n)`,
   inside the caller's transaction: it runs only once that commits. `job_actor(job)` gives
   back the `Actor` for the services the handler calls. Raise `JobFailed("why")` from a chunk to
   end the job as failed (its transaction rolls back); any other exception does the same and is
   logged. `ValidationFailed` is for handlers to catch per item and report as `failed`.

The admin shows every job on `admin:customers_job_change` with a live progress bar fed by
`GET /api/v1/jobs/{id}/`; handlers need nothing extra for that.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.db.models import F, Q, QuerySet
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _

from org.actors import Actor
from org.models import Role
from tagportal.errors import Conflict, NotAllowed, ValidationFailed
from tagportal.ids import as_id, is_id

from .models import Job, JobKind, JobStatus

logger = logging.getLogger(__name__)

JOB_CHUNK_SECONDS = getattr(settings, "JOB_CHUNK_SECONDS", 0.4)
JOB_HEARTBEAT_SECONDS = getattr(settings, "JOB_HEARTBEAT_SECONDS", 0.5)
JOB_STALE_SECONDS = getattr(settings, "JOB_STALE_SECONDS", 30)
# Caps every handler's chunk size (ops knob; the worker tests use it to make a small job long).
JOB_MAX_CHUNK = int(os.environ.get("TAGPORTAL_JOB_MAX_CHUNK", "0") or 0) or getattr(settings, "JOB_MAX_CHUNK", 0)
DEMO_THREAD_NODE = "demo-thread"
MAX_ERRORS_KEPT = 1000
MAX_LOG_KEPT = 200

FINISHED = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)

# One id per worker process start (inherited by prefork children): a `running` job whose owner
# has this node name but another boot id belongs to a previous, dead incarnation of this worker.
WORKER_BOOT = uuid.uuid4().hex[:12]


class JobFailed(Exception):
    """Raised by a handler to end its job as failed with a message for the user."""


@dataclass
class Chunk:
    """What one chunk did: items done (failed ones included), where to resume, failures, counts."""

    done: int
    cursor: Any = None
    failed: list[dict] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)


class JobHandler:
    """Base of a job kind's handler; one instance per run. See the module docstring."""

    kind: str = ""
    chunk_size = 1000
    min_chunk_size = 50
    max_chunk_size = 20_000
    undoable = False

    def prepare(self, job: Job) -> int | None:
        return None

    def run_chunk(self, job: Job, cursor: Any, size: int) -> Chunk | None:
        raise NotImplementedError

    def finish(self, job: Job) -> None:
        return None

    def result(self, job: Job) -> dict | None:
        """What the finished job found, for the API's `result` (e.g. a back-test's figures); None: nothing."""
        return None

    def result_link(self, job: Job) -> tuple[str, str] | None:
        """(label, URL) of a page showing the finished job's result, linked from the job page; None: none."""
        return None


_HANDLERS: dict[str, type[JobHandler]] = {}


def job_handler(kind: str):
    """Class decorator registering the handler of a job kind."""

    def register(cls: type[JobHandler]) -> type[JobHandler]:
        cls.kind = str(kind)
        _HANDLERS[str(kind)] = cls
        return cls

    return register


def handler_for(kind: str) -> type[JobHandler]:
    _load_handlers()
    try:
        return _HANDLERS[str(kind)]
    except KeyError:
        raise JobFailed(f"no handler for job kind {kind!r}") from None


def _load_handlers() -> None:
    """Handlers live in modules that register on import; import the known ones."""
    from importlib import import_module

    for module in ("customers.transfers",):
        try:
            import_module(module)
        except ImportError as exc:  # a module not written yet
            if exc.name != module:
                raise


# ---------------------------------------------------------------- actors and visibility


def job_actor(job: Job) -> Actor:
    """The `Actor` a job acts as: the employee and/or API client that started it."""
    return Actor(employee=job.actor_employee, api_client=job.actor_client)


def job_actor_label(job: Job) -> str:
    if job.actor_employee_id:
        label = str(job.actor_employee)
        if job.actor_client_id:
            label += f" (API: {job.actor_client.name})"
        return label
    if job.actor_client_id:
        return f"API: {job.actor_client.name}"
    return _("系统")


def jobs_visible(actor: Actor) -> QuerySet[Job]:
    """任务可见性: enterprise admins see every job; HR also sees transfer jobs; everyone else
    sees only the jobs they started (an API client at enterprise level: every job it started, for
    whichever employee; acting for an employee: that employee's jobs)."""
    qs = Job.objects.select_related("actor_employee", "actor_client")
    employee = actor.employee
    if employee is None:
        if actor.api_client is None:
            return qs  # the system itself
        return qs.filter(actor_client=actor.api_client)
    if employee.is_superuser or employee.has_role(Role.ENTERPRISE_ADMIN):
        return qs
    own = Q(actor_employee=employee)
    if employee.has_role(Role.HR):
        own |= Q(kind=JobKind.TRANSFER)
    return qs.filter(own)


def job_result(job: Job) -> dict | None:
    """The handler's `result(job)` (None for kinds without one)."""
    try:
        return handler_for(job.kind)().result(job)
    except JobFailed:
        return None


def job_result_link(job: Job) -> tuple[str, str] | None:
    try:
        return handler_for(job.kind)().result_link(job)
    except JobFailed:
        return None


def job_is_undoable(job: Job) -> bool:
    if job.status not in FINISHED or job.kind == JobKind.UNDO:
        return False
    try:
        return handler_for(job.kind).undoable and job.done > 0
    except JobFailed:
        return False


# ---------------------------------------------------------------- services


def _log_entry(event: str, message: str = "") -> dict:
    return {"at": timezone.now().isoformat(), "event": event, "message": message}


def job_create(*, kind: str, actor: Actor, params: dict, total: int = 0, undo_of: Job | None = None) -> Job:
    """Save a pending job and queue it on commit (run inline in eager mode)."""
    handler_for(kind)  # unknown kinds fail here, not in the worker
    job = Job(
        kind=kind,
        params=params,
        total=total,
        actor_employee=actor.employee,
        actor_client=actor.api_client,
        undo_of=undo_of,
        log=[_log_entry("created", str(actor))],
    )
    job.full_clean()
    with transaction.atomic():
        job.save()
        transaction.on_commit(lambda: job_enqueue(job_id=job.pk))
    return job


def job_enqueue(*, job_id: int) -> None:
    from .tasks import job_run

    if getattr(settings, "TAGPORTAL_JOBS_IN_THREAD", False) and getattr(settings, "CELERY_TASK_ALWAYS_EAGER", False):
        # The demo (`make demo`: SQLite, no broker): an in-process worker thread instead of running
        # inline in the request, so the job page opens at once and its progress bar moves.
        threading.Thread(target=_run_in_thread, args=(job_id,), name=f"tagportal-job-{job_id}", daemon=True).start()
        return
    job_run.delay(job_id)


def _run_in_thread(job_id: int) -> None:
    try:
        job_execute(job_id=job_id, node=DEMO_THREAD_NODE)
    except Exception:  # noqa: BLE001 - a thread has nobody to raise to: the job's status and log say it
        logger.exception("job %s failed in the demo worker thread", job_id)
    finally:
        connection.close()


@transaction.atomic
def job_cancel(*, actor: Actor, job: Job) -> Job:
    """取消: a pending job ends at once; a running one stops after its current chunk.
    Work already committed stays (undo it with `job_undo`)."""
    if not actor.can_write:
        raise NotAllowed(_("只读密钥不能取消任务。"))
    job = Job.objects.select_for_update().get(pk=job.pk)
    if job.status in FINISHED:
        raise Conflict(_("任务已结束，不能取消。"), details={"status": job.status})
    if job.status == JobStatus.PENDING:
        job.status = JobStatus.CANCELLED
        job.finished_at = timezone.now()
    job.cancel_requested = True
    job.log = [*job.log, _log_entry("cancel_requested", str(actor))][-MAX_LOG_KEPT:]
    job.save(update_fields=["status", "finished_at", "cancel_requested", "log"])
    return job


@transaction.atomic
def job_undo(*, actor: Actor, job: Job, source: str = "bulk") -> Job:
    """撤销: start an UNDO job reversing exactly the tag changes `job` made (see `customers.bulk_jobs`)."""
    if not actor.can_write:
        raise NotAllowed(_("只读密钥不能撤销任务。"))
    job = Job.objects.select_for_update().get(pk=job.pk)
    if job.kind == JobKind.UNDO or not handler_for(job.kind).undoable:
        raise Conflict(_("这类任务不能撤销。"), code="not_undoable")
    if job.status not in FINISHED:
        raise Conflict(_("任务尚未结束，不能撤销。"), details={"status": job.status}, code="not_finished")
    active = job.undone_by.exclude(status__in=[JobStatus.FAILED, JobStatus.CANCELLED]).first()
    if active is not None:
        raise Conflict(_("该任务已经撤销过（任务 #%(id)s）。") % {"id": active.pk}, details={"job": active.pk},
                       code="already_undone")
    return job_create(kind=JobKind.UNDO, actor=actor, params={"job": job.pk, "source": source}, undo_of=job)


# ---------------------------------------------------------------- running


class _Superseded(Exception):
    """Another run owns the job now (or it was cancelled while pending): drop this chunk."""


class _Heartbeat(threading.Thread):
    """Refreshes `heartbeat_at` every JOB_HEARTBEAT_SECONDS from its own DB connection."""

    def __init__(self, job_id: int, token: str):
        super().__init__(name=f"job-{job_id}-heartbeat", daemon=True)
        self.job_id, self.token = job_id, token
        self.stopped = threading.Event()
        self.beats = 0

    def run(self) -> None:
        try:
            while not self.stopped.wait(JOB_HEARTBEAT_SECONDS):
                try:
                    Job.objects.filter(pk=self.job_id, worker=self.token).update(heartbeat_at=timezone.now())
                    self.beats += 1
                except Exception:  # noqa: BLE001 - a lost beat is not worth killing the job
                    logger.exception("job %s: heartbeat failed", self.job_id)
                    close_old_connections()
        finally:
            connection.close()

    def stop(self) -> None:
        self.stopped.set()
        self.join(5)


def _claim(job_id: int, token: str) -> bool:
    """Compare-and-set: take a pending job, or a running one whose heartbeat went stale."""
    now = timezone.now()
    stale = now - timedelta(seconds=JOB_STALE_SECONDS)
    return bool(
        Job.objects.filter(pk=job_id)
        .filter(Q(status=JobStatus.PENDING) | Q(status=JobStatus.RUNNING, heartbeat_at__lt=stale)
                | Q(status=JobStatus.RUNNING, heartbeat_at__isnull=True))
        .update(status=JobStatus.RUNNING, worker=token, heartbeat_at=now, started_at=Coalesce(F("started_at"), now))
    )


def _locked_own(job_id: int, token: str) -> Job:
    job = Job.objects.select_for_update().get(pk=job_id)
    if job.worker != token or job.status != JobStatus.RUNNING:
        raise _Superseded
    return job


def _append_log(job: Job, event: str, message: str = "") -> None:
    job.log = [*(job.log or []), _log_entry(event, message)][-MAX_LOG_KEPT:]


def _finish(job_id: int, token: str, status: str, event: str, message: str = "",
            handler: JobHandler | None = None) -> None:
    with transaction.atomic():
        job = _locked_own(job_id, token)
        if handler is not None and status == JobStatus.SUCCEEDED:
            handler.finish(job)
            if job.done != job.total:
                _append_log(job, "total_adjusted", f"{job.total} → {job.done}")
                job.total = job.done
        job.status = status
        now = timezone.now()
        job.finished_at = now
        job.heartbeat_at = now
        job.worker = ""
        _append_log(job, event, message)
        job.save()


def job_execute(*, job_id: int, node: str = "", threaded_heartbeat: bool = False) -> str | None:
    """Run (or resume) a job to its end; what the Celery task calls. Returns the final status,
    or None when the job was not ours to run (finished, cancelled, or alive in another worker)."""
    token = f"{node or 'local'}|{WORKER_BOOT}|{os.getpid()}|{uuid.uuid4().hex[:8]}"
    if not _claim(job_id, token):
        return None
    job = Job.objects.select_related("actor_employee", "actor_client").get(pk=job_id)
    heartbeat = _Heartbeat(job_id, token) if threaded_heartbeat else None
    if heartbeat:
        heartbeat.start()
    try:
        return _run_claimed(job, token)
    except _Superseded:
        logger.warning("job %s: another run took over; this one stops", job_id)
        return None
    finally:
        if heartbeat:
            heartbeat.stop()


def _run_claimed(job: Job, token: str) -> str:
    handler = handler_for(job.kind)()
    resumed = job.done > 0 or job.cursor is not None
    with transaction.atomic():
        own = _locked_own(job.pk, token)
        _append_log(own, "resumed" if resumed else "started", token.split("|")[0])
        own.save(update_fields=["log"])
    try:
        total = handler.prepare(job)
        if total is not None and not resumed:
            Job.objects.filter(pk=job.pk, worker=token).update(total=total)
        size = _capped(handler.chunk_size)
        cancelled = False
        while True:
            started = time.monotonic()
            with transaction.atomic():
                _relaxed_commit()
                state = Job.objects.filter(pk=job.pk).values("cursor", "cancel_requested", "worker").get()
                if state["worker"] != token:
                    raise _Superseded
                if state["cancel_requested"]:
                    cancelled = True
                    break
                chunk = handler.run_chunk(job, state["cursor"], size)
                own = _locked_own(job.pk, token)
                if chunk is None:
                    break
                own.done += chunk.done
                own.cursor = chunk.cursor
                if chunk.failed:
                    own.failed_items += len(chunk.failed)
                    room = MAX_ERRORS_KEPT - len(own.errors)
                    if room > 0:
                        own.errors = [*own.errors, *chunk.failed[:room]]
                counts = dict(own.counts or {})
                for key, value in chunk.counts.items():
                    counts[key] = counts.get(key, 0) + value
                own.counts = counts
                if own.done > own.total:
                    own.total = own.done
                own.heartbeat_at = timezone.now()
                own.save(update_fields=["done", "cursor", "failed_items", "errors", "counts", "total", "heartbeat_at"])
            job.done, job.cursor, job.counts = own.done, own.cursor, own.counts
            elapsed = time.monotonic() - started
            size = _next_size(handler, size, elapsed, chunk.done)
    except (_Superseded, KeyboardInterrupt, SystemExit):
        raise
    except JobFailed as exc:
        _finish(job.pk, token, JobStatus.FAILED, "failed", str(exc))
        return JobStatus.FAILED
    except Exception as exc:  # noqa: BLE001 - a crashing handler fails its job, visibly
        logger.exception("job %s crashed", job.pk)
        _finish(job.pk, token, JobStatus.FAILED, "crashed", f"{type(exc).__name__}: {exc}")
        return JobStatus.FAILED
    if cancelled:
        _finish(job.pk, token, JobStatus.CANCELLED, "cancelled")
        return JobStatus.CANCELLED
    _finish(job.pk, token, JobStatus.SUCCEEDED, "succeeded", handler=handler)
    return JobStatus.SUCCEEDED


def _relaxed_commit() -> None:
    """A chunk's commit need not wait for the WAL flush: the chunk's work and the job's cursor are one
    transaction, so if a database crash loses the last commits it loses both, and the resumed job
    redoes exactly those chunks. (An API call's answer, by contrast, must be durable: not used there.)"""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")


def _next_size(handler: JobHandler, size: int, elapsed: float, done: int) -> int:
    """Aim each chunk at JOB_CHUNK_SECONDS so progress (and the cancel check) stays frequent."""
    if done < size or elapsed <= 0:
        return size
    factor = max(0.5, min(2.0, JOB_CHUNK_SECONDS / elapsed))
    return _capped(int(max(handler.min_chunk_size, min(handler.max_chunk_size, size * factor))))


def _capped(size: int) -> int:
    return min(size, JOB_MAX_CHUNK) if JOB_MAX_CHUNK else size


# ---------------------------------------------------------------- recovery


def job_is_stale(job: Job) -> bool:
    """Running, but no heartbeat for JOB_STALE_SECONDS: its worker is presumed dead."""
    if job.status != JobStatus.RUNNING:
        return False
    return job.heartbeat_at is None or job.heartbeat_at < timezone.now() - timedelta(seconds=JOB_STALE_SECONDS)


def jobs_requeue_stale(*, node: str = "", boot: str = "") -> list[int]:
    """Re-queue jobs whose worker died: `running` with a heartbeat older than JOB_STALE_SECONDS,
    and, when a worker (re)starts as `node`, at once the jobs its previous incarnation owned.

    Re-queuing only sends `job_run(id)` again; the claim's compare-and-set makes sure a job that
    is in fact alive is not run twice. Returns the job ids re-queued."""
    stale = timezone.now() - timedelta(seconds=JOB_STALE_SECONDS)
    running = Job.objects.filter(status=JobStatus.RUNNING)
    ids: set[int] = set(running.filter(Q(heartbeat_at__lt=stale) | Q(heartbeat_at__isnull=True))
                        .values_list("pk", flat=True))
    if node:
        previous = list(
            running.filter(worker__startswith=f"{node}|").exclude(worker__startswith=f"{node}|{boot}|")
            .values_list("pk", flat=True)
        )
        if previous:
            # Their owner is certainly dead: make them claimable now rather than after the stale delay.
            Job.objects.filter(pk__in=previous, status=JobStatus.RUNNING).update(
                status=JobStatus.PENDING, heartbeat_at=None, worker=""
            )
            ids.update(previous)
    for job_id in sorted(ids):
        with transaction.atomic():
            job = Job.objects.select_for_update().get(pk=job_id)
            _append_log(job, "requeued", _("执行任务的进程已停止，重新排队"))
            job.save(update_fields=["log"])
        logger.warning("job %s: worker lost, re-queued", job_id)
        job_enqueue(job_id=job_id)
    return sorted(ids)


# ---------------------------------------------------------------- progress (read)


def job_progress(job: Job) -> dict:
    """Progress figures for the API and the admin's live bar: percent, rate (items/s), time left."""
    now = timezone.now()
    end = job.finished_at or now
    elapsed = (end - job.started_at).total_seconds() if job.started_at else 0.0
    rate = job.done / elapsed if elapsed > 0 and job.done else 0.0
    remaining = max(job.total - job.done, 0)
    eta = remaining / rate if rate > 0 and job.status == JobStatus.RUNNING else None
    if job.status == JobStatus.SUCCEEDED:
        percent = 100.0
    else:
        percent = round(100.0 * job.done / job.total, 1) if job.total else 0.0
    return {
        "percent": min(percent, 100.0),
        "elapsed": round(elapsed, 2),
        "rate": round(rate, 1),
        "eta": round(eta, 1) if eta is not None else None,
    }


def summarize_failures(failed: Iterable[dict], limit: int = 50) -> list[dict]:
    return list(failed)[:limit]


def chunk_failures_from(exc: ValidationFailed, operations: list) -> tuple[set[int], list[dict]]:
    """Split a bulk service's ValidationFailed into the bad operation indexes and failure records."""
    details = exc.details if isinstance(exc.details, list) else []
    bad: set[int] = set()
    failed: list[dict] = []
    for item in details:
        if not isinstance(item, dict) or "index" not in item:
            continue
        index = item["index"]
        if isinstance(index, int) and 0 <= index < len(operations):
            bad.add(index)
            failed.append({"customer": operations[index].customer_id, "errors": item.get("errors", [])})
    return bad, failed


# ================================================================ bulk tagging (批量打标签)


def _tag_ids(values, key: str) -> tuple[int, ...]:
    ids, bad = [], []
    for value in values or ():
        if is_id(value):  # range-checked before the database (tagportal.ids)
            ids.append(as_id(value))
        else:
            bad.append(value)
    if bad:
        raise ValidationFailed(_("%(key)s 必须是标签 id 列表。") % {"key": key}, details={key: bad})
    return tuple(dict.fromkeys(ids))


def bulk_tag_change_errors(*, actor: Actor, add: tuple[int, ...], remove: tuple[int, ...]) -> list[dict]:
    """The rule violations (scope, locked, single-choice, add-and-remove) of applying `add`/`remove`
    to any customer, checked once before a job starts; the same checks the tagging service makes."""
    from .services.tagging import _item_errors, _Taxonomy, _visible_tag_ids

    tags = set(add) | set(remove)
    return _item_errors(actor, set(add), set(remove), _Taxonomy(tags), _visible_tag_ids(actor, tags))


def bulk_tagging_start(
    *,
    actor: Actor,
    add=(),
    remove=(),
    source: str,
    filter_params: dict | None = None,
    customer_ids=None,
) -> Job:
    """批量打标签: start a BULK_TAGGING job over all customers matching a filter (`filter_params`,
    the list's query parameters) or over explicit `customer_ids`, as `actor` sees them.

    Checked before anything is queued (400, no job): a bad filter, unknown or hidden tags,
    locked tags for staff and managers, two tags of one single-choice group, nothing to do."""
    from .selectors import customers_filtered, parse_customer_filter

    if not actor.can_write:
        raise NotAllowed(_("只读密钥不能写入。"), code="read_only")
    add, remove = _tag_ids(add, "add"), _tag_ids(remove, "remove")
    if not add and not remove:
        raise ValidationFailed(_("请至少选择一个要添加或移除的标签。"), details={"add": [], "remove": []})
    errors = bulk_tag_change_errors(actor=actor, add=add, remove=remove)
    if errors:
        raise ValidationFailed(errors[0]["message"], details=errors, code=errors[0]["code"])
    params: dict[str, Any] = {"add": list(add), "remove": list(remove), "source": source,
                              "employee": actor.employee.userid if actor.employee else None}
    if customer_ids is not None:
        ids = sorted(set(_tag_ids(customer_ids, "customers")))
        params["customers"] = ids
        total = len(ids)
    else:
        flt = parse_customer_filter(filter_params or {})
        customers_filtered(employee=actor.employee, flt=flt)  # hidden/unknown tag ids in the filter: 400
        params["filter"] = flt.as_params()
        total = 0  # counted by the job when it starts
    return job_create(kind=JobKind.BULK_TAGGING, actor=actor, params=params, total=total)


def _apply_operations(job: Job, actor: Actor, operations: list, source: str) -> tuple[Any, list[dict]]:
    """Run the set-based service on a chunk; drop items it rejects (reported as failed) and retry once."""
    from .services import BulkResult, customers_tags_bulk_update

    failed: list[dict] = []
    for _attempt in range(2):
        if not operations:
            return BulkResult(), failed
        try:
            return customers_tags_bulk_update(actor=actor, operations=operations, source=source, job=job), failed
        except ValidationFailed as exc:
            bad, items = chunk_failures_from(exc, operations)
            if not bad:
                raise JobFailed(exc.message) from exc
            if len(bad) == len(operations) and not any(
                e.get("code") == "not_found" for item in items for e in item["errors"]
            ):
                # The same rule now refuses every customer (a tag was locked or deleted meanwhile).
                raise JobFailed(str(items[0]["errors"][0].get("message", exc.message))) from exc
            failed.extend(items)
            operations = [op for i, op in enumerate(operations) if i not in bad]
    raise JobFailed(_("批量打标签失败。"))


@job_handler(JobKind.BULK_TAGGING)
class BulkTaggingJob(JobHandler):
    """Adds/removes the same tags on every customer of a filter (or of a list of ids), in id order.

    The cursor is the last customer id done, committed with the chunk's taggings and audit rows,
    so a restarted run continues after it: no customer tagged twice, none skipped. Customers are
    re-selected through the filter chunk by chunk (keyset on id), never materialised at once."""

    chunk_size = 2000
    max_chunk_size = 20_000
    undoable = True

    def _customers(self, job: Job):
        from .selectors import customers_filtered, parse_customer_filter, visible_customers

        employee = job.actor_employee
        if "customers" in job.params:
            return visible_customers(employee).filter(pk__in=job.params["customers"])
        return customers_filtered(employee=employee, flt=parse_customer_filter(job.params.get("filter") or {}))

    def prepare(self, job: Job) -> int | None:
        if "customers" in job.params:
            return len(job.params["customers"])
        return self._customers(job).order_by().count()

    def run_chunk(self, job: Job, cursor, size: int) -> Chunk | None:
        from .services import customers_tags_bulk_apply

        after = int(cursor or 0)
        if "customers" in job.params:
            ids = [c for c in job.params["customers"] if c > after][:size]
        else:
            ids = list(self._customers(job).filter(pk__gt=after).order_by("pk").values_list("pk", flat=True)[:size])
        if not ids:
            return None
        add, remove = tuple(job.params.get("add") or ()), tuple(job.params.get("remove") or ())
        try:
            # One change for the whole chunk: checked once, written set-based, audited with this job.
            result, missing = customers_tags_bulk_apply(actor=job_actor(job), customer_ids=ids, add=add, remove=remove,
                                                        source=job.params.get("source", "bulk"), job=job)
        except ValidationFailed as exc:  # the change itself is refused now (a tag locked or deleted meanwhile)
            raise JobFailed(exc.message) from exc
        return Chunk(
            done=len(ids),
            cursor=ids[-1],
            failed=[{"customer": c, "errors": [{"code": "not_found", "message": _("客户不存在或不可见")}]}
                    for c in missing],
            counts={"added": result.added, "removed": result.removed, "unchanged": result.unchanged},
        )


# ================================================================ undo (撤销)


@job_handler(JobKind.UNDO)
class UndoJob(JobHandler):
    """Reverses exactly the tag changes job `params["job"]` made, customer by customer, from its
    audit rows (TagEvent.job). For each (customer, tag) the job touched, its last change is undone

    * if it added the tag: the tag is removed only if the customer still has it and nobody else
      added that tag to that customer after the job did (then it is theirs too, and stays);
    * if it removed the tag: the tag is put back only if the customer does not have it and nobody
      else changed that tag on that customer since (a later removal by someone else stands), and,
      for a single-choice group, only if the customer holds no other tag of that group afterwards.

    Skipped pairs are counted as `kept`. The changes go through the same tagging service (scope,
    locked groups, audit with this UNDO job), so the undo itself is audited and resumable
    (keyset on customer id)."""

    chunk_size = 1000
    max_chunk_size = 10_000

    def prepare(self, job: Job) -> int | None:
        from .models import TagEvent

        return TagEvent.objects.filter(job_id=job.params["job"]).values("customer_id").distinct().count()

    def run_chunk(self, job: Job, cursor, size: int) -> Chunk | None:
        from tags.models import Tag

        from .models import TagAction, TagEvent, Tagging
        from .services import TagOperation

        target = job.params["job"]
        after = int(cursor or 0)
        customer_ids = list(
            TagEvent.objects.filter(job_id=target, customer_id__gt=after)
            .order_by("customer_id").values_list("customer_id", flat=True).distinct()[:size]
        )
        if not customer_ids:
            return None
        # The job's last change per (customer, tag).
        last: dict[tuple[int, int], tuple[int, str]] = {}
        for pk, customer_id, tag_id, action in (
            TagEvent.objects.filter(job_id=target, customer_id__in=customer_ids, tag_id__isnull=False)
            .order_by("pk").values_list("pk", "customer_id", "tag_id", "action")
        ):
            last[(customer_id, tag_id)] = (pk, action)
        tag_ids = {t for _c, t in last}
        since = min((pk for pk, _a in last.values()), default=0)
        # Others' later changes on those pairs (anyone but the job and this undo).
        later: dict[tuple[int, int], list[tuple[int, str]]] = {}
        for pk, customer_id, tag_id, action in (
            TagEvent.objects.filter(customer_id__in=customer_ids, tag_id__in=tag_ids, pk__gt=since)
            .exclude(job_id__in=[target, job.pk]).values_list("pk", "customer_id", "tag_id", "action")
        ):
            later.setdefault((customer_id, tag_id), []).append((pk, action))
        current: dict[int, set[int]] = {}
        for customer_id, tag_id in Tagging.objects.filter(customer_id__in=customer_ids).values_list(
            "customer_id", "tag_id"
        ):
            current.setdefault(customer_id, set()).add(tag_id)
        held = set().union(*current.values()) if current else set()
        groups: dict[int, int] = {}
        single_choice_groups: set[int] = set()
        for pk, group_id, single in Tag.objects.filter(pk__in=tag_ids | held).values_list(
            "pk", "group_id", "group__single_choice"
        ):
            groups[pk] = group_id
            if single:
                single_choice_groups.add(group_id)

        removes: dict[int, set[int]] = {}
        readds: dict[int, set[int]] = {}
        kept = 0
        for (customer_id, tag_id), (pk, action) in last.items():
            after_job = [a for p, a in later.get((customer_id, tag_id), ()) if p > pk]
            has = tag_id in current.get(customer_id, ())
            if action == TagAction.ADD:
                if has and TagAction.ADD not in after_job:
                    removes.setdefault(customer_id, set()).add(tag_id)
                elif has:
                    kept += 1
            else:
                if not has and not after_job:
                    readds.setdefault(customer_id, set()).add(tag_id)
                elif after_job:
                    kept += 1
        operations = []
        for customer_id in customer_ids:
            remove = removes.get(customer_id, set())
            add = set()
            remaining = current.get(customer_id, set()) - remove
            taken_groups = set()
            if customer_id in readds:
                remaining_groups = {groups.get(t) for t in remaining}
                for tag_id in sorted(readds[customer_id]):
                    group_id = groups.get(tag_id)
                    if group_id in single_choice_groups and (group_id in remaining_groups or group_id in taken_groups):
                        kept += 1
                        continue
                    taken_groups.add(group_id)
                    add.add(tag_id)
            if add or remove:
                operations.append(TagOperation(customer_id=customer_id, add=tuple(sorted(add)),
                                               remove=tuple(sorted(remove))))
        result, failed = _apply_operations(job, job_actor(job), operations, job.params.get("source", "bulk"))
        return Chunk(
            done=len(customer_ids),
            cursor=customer_ids[-1],
            failed=failed,
            counts={"removed": result.removed, "restored": result.added, "kept": kept},
        )
