"""客户继承: handing an employee's customers to inheritors, keeping the whole portrait (DESIGN rule 12).

离职继承 (departed transfer) and 在职继承 (on-the-job transfer) are one path; the first also marks the
employee departed (`Employee.save` then refuses log-in and API acting).

- `transfer_preview(...)` answers what a transfer would do, without writing anything.
- `transfer_start(...)` validates, marks departed if asked, creates the `Transfer`, one `TransferItem`
  per customer (with its inheritor) and a TRANSFER job; all in one transaction.
- The TRANSFER job handler calls `transfer_process_chunk(...)` until nothing is pending. Each chunk
  is one transaction that moves its customers set-based and records each item's outcome, so a
  worker killed mid-way resumes with every customer moved exactly once.

What moves, per customer (from employee F to inheritor T):

- F's follow relation is kept, never deleted, as F's archive: status `transferred`, `transferred_to`
  T, and `portrait_kept` telling whether its portrait went along.
- T gets an active relation. With the portrait kept it carries F's remark, description, add time,
  add way and `state`; without, only the add time, add way and `state`. If T already follows the
  customer the two merge: T's remark stays if set (else F's), descriptions are joined.
- With the portrait kept, F's personal tags on the customer become T's, merged by name
  (case-insensitive; T's tag is found or created), each addition audited with source `transfer`.
  F's own rows stay, archived. Notes and chat history never move: they are the customer's,
  attributed to their author; followers see them, and `portrait_archived()` hides the ones left
  archived by a transfer without the portrait.
- Enterprise tags are the customer's and never change.

Re-running a transfer (the same or a new one for the same pair) changes nothing; re-running a
transfer made without the portrait, now with it, carries the portrait over.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce, Lower
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy

from org.actors import Actor
from org.models import Employee, EmployeeStatus, Role
from org.services import PRIVILEGED_ROLES
from tagportal.errors import Conflict, NotAllowed, NotFound, ValidationFailed
from tagportal.querysets import RestrictedQuerySet
from tags.models import PersonalTag

from .hooks import run_transfer_started_handlers
from .models import (
    Customer,
    FollowRelation,
    Job,
    JobKind,
    JobStatus,
    Message,
    Note,
    PersonalTagging,
    RelationStatus,
    TagAction,
    TagEvent,
    TagSource,
    Transfer,
    TransferItem,
    TransferOutcome,
)

CHUNK_SIZE = 2000
"""Customers per chunk (one transaction each)."""

FINISHED_JOB_STATUSES = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)


# ---------------------------------------------------------------- who may


def transfer_allowed(actor: Actor) -> bool:
    """HR and enterprise admins (and enterprise-level API clients) hand customers over."""
    return actor.can_write and actor.has_role(Role.HR, Role.ENTERPRISE_ADMIN)


PRIVILEGED_DEPARTURE_MESSAGE = _lazy("只有企业管理员可以将企业管理员或标签管理员标记为离职；可先办理在职继承。")


def _may_mark_departed(actor: Actor, employee: Employee) -> bool:
    """Like any status change of a privileged account (org.services), only enterprise admins may
    mark an enterprise admin or tag admin departed."""
    return actor.has_role(Role.ENTERPRISE_ADMIN) or not (employee.is_superuser or employee.roles & PRIVILEGED_ROLES)


def _check_caller(actor: Actor) -> None:
    if not transfer_allowed(actor):
        raise NotAllowed(_("只有人事或企业管理员可以执行客户继承。"), code="forbidden")


class TransferQuerySet(RestrictedQuerySet):
    def restrict(self, actor: Actor, action: str = "view"):
        """Transfers are HR's: HR and enterprise admins see them all, nobody else any."""
        if actor.has_role(Role.HR, Role.ENTERPRISE_ADMIN):
            return self
        return self.none()


def visible_transfers(actor: Actor) -> QuerySet[Transfer]:
    """The transfers `actor` may see (HR, enterprise admins, enterprise-level API clients)."""
    return TransferQuerySet(Transfer).restrict(actor).select_related(
        "from_employee", "job", "created_by_employee", "created_by_client"
    ).prefetch_related("to_employees")


def departed_awaiting_transfer(actor: Actor, *, include_done: bool = False) -> QuerySet[Employee]:
    """待分配离职成员: departed employees annotated with `waiting` (customers they still follow
    actively, i.e. not handed over yet), `last_transfer_id` and `running_transfer_id`; those with
    nothing waiting only with `include_done`. Empty for callers who may not transfer. One query."""
    if not transfer_allowed(actor):
        return Employee.objects.none()
    active = FollowRelation.objects.filter(employee=OuterRef("pk"), status=RelationStatus.ACTIVE)
    waiting = active.order_by().values("employee").annotate(n=Count("pk")).values("n")
    transfers_of = Transfer.objects.filter(from_employee=OuterRef("pk")).order_by("-created_at", "-pk")
    running = transfers_of.filter(finished_at__isnull=True).exclude(job__status__in=FINISHED_JOB_STATUSES)
    qs = (
        Employee.objects.filter(status=EmployeeStatus.DEPARTED)
        .annotate(
            waiting=Coalesce(Subquery(waiting), 0),
            last_transfer_id=Subquery(transfers_of.values("pk")[:1]),
            running_transfer_id=Subquery(running.values("pk")[:1]),
        )
        .prefetch_related("departments")
        .order_by("-waiting", "-departed_at", "userid")
    )
    return qs if include_done else qs.filter(waiting__gt=0)


def portrait_archived(*, customer_ref: str = "customer_id", author_ref: str = "author_id") -> Exists:
    """True for a note (or message) whose author handed the customer over *without* the portrait.

    Such notes stay archived with their author: selectors showing a customer's notes or chat to
    its followers exclude them (admins and the author still see them). A later re-run with the
    portrait kept flips `portrait_kept` and they become the inheritor's to see.
    """
    return Exists(
        FollowRelation.objects.filter(
            customer_id=OuterRef(customer_ref),
            employee_id=OuterRef(author_ref),
            status=RelationStatus.TRANSFERRED,
            portrait_kept=False,
        )
    )


def without_archived_portraits(qs: QuerySet, employee: Employee | None, *, author_ref: str) -> QuerySet:
    """Notes or chat messages as `employee` sees them on customers they may see: those their author
    left archived by a transfer without the portrait are hidden from followers (enterprise level,
    admins, HR and the author still see them). `author_ref`: "author_id" (notes), "employee_id" (chat)."""
    if employee is None or employee.has_role(Role.ENTERPRISE_ADMIN, Role.TAG_ADMIN, Role.HR):
        return qs
    return qs.filter(Q(~portrait_archived(author_ref=author_ref)) | Q(**{author_ref: employee.pk}))


# ---------------------------------------------------------------- the plan (shared by preview and start)


@dataclass
class InheritorPlan:
    """What one inheritor gets."""

    employee: Employee
    customer_ids: list[int] = field(default_factory=list)
    already_following: int = 0
    already_transferred: int = 0
    personal_taggings: int = 0
    personal_tags: int = 0  # distinct personal tags that move (counts only: rule 9, no names shown to HR)
    conflicts: int = 0  # of those, how many merge into one of the inheritor's tags of the same name
    notes: int = 0
    messages: int = 0

    @property
    def customers(self) -> int:
        return len(self.customer_ids)


@dataclass
class TransferPlan:
    """A transfer's preview: counts per inheritor, conflicts and validation errors (empty = can start)."""

    from_employee: Employee | None
    keep_portrait: bool
    mark_departed: bool
    inheritors: list[InheritorPlan] = field(default_factory=list)
    assignment: dict[int, int] = field(default_factory=dict)
    errors: list[dict] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def customers(self) -> int:
        return len(self.assignment)

    def total(self, attr: str) -> int:
        return sum(getattr(i, attr) for i in self.inheritors)

    def error(self, field_name: str, message: str, **extra) -> None:
        self.errors.append({"field": field_name, "message": message, **extra})

    def as_dict(self) -> dict:
        return {
            "from_employee": self.from_employee.userid if self.from_employee else None,
            "keep_portrait": self.keep_portrait,
            "mark_departed": self.mark_departed,
            "customers": self.customers,
            "inheritors": [
                {
                    "employee": i.employee.userid,
                    "customers": i.customers,
                    "already_following": i.already_following,
                    "already_transferred": i.already_transferred,
                    "personal_taggings": i.personal_taggings,
                    "personal_tags": i.personal_tags,
                    "conflicts": i.conflicts,
                    "notes": i.notes,
                    "messages": i.messages,
                }
                for i in self.inheritors
            ],
            "errors": self.errors,
        }


def _plan(
    *,
    actor: Actor,
    from_employee: Employee | None,
    to_employees: Sequence[Employee],
    keep_portrait: bool,
    customer_ids: Iterable[int] | None,
    assignment: Mapping[int, Employee] | None,
    mark_departed: bool,
) -> TransferPlan:
    plan = TransferPlan(from_employee=from_employee, keep_portrait=bool(keep_portrait), mark_departed=mark_departed)
    if from_employee is None:
        plan.error("from_employee", _("请指定原跟进成员。"))
        return plan
    inheritors: list[Employee] = []
    for emp in to_employees:
        if emp.pk not in {e.pk for e in inheritors}:
            inheritors.append(emp)
    assignment = {int(cid): emp for cid, emp in (assignment or {}).items()}
    for emp in assignment.values():
        if emp.pk not in {e.pk for e in inheritors}:
            inheritors.append(emp)
    if not inheritors:
        plan.error("to_employees", _("请至少选择一位继承人。"))
    for emp in inheritors:
        if emp.pk == from_employee.pk:
            message = _("继承人不能是原跟进成员本人（%(name)s）。") % {"name": emp}
            plan.error("to_employees", message, employee=emp.userid)
        elif emp.status == EmployeeStatus.DEPARTED or not emp.is_active:
            plan.error("to_employees", _("继承人 %(name)s 已离职或已停用。") % {"name": emp}, employee=emp.userid)
    if mark_departed and actor.employee is not None and actor.employee.pk == from_employee.pk:
        plan.error("from_employee", _("不能将自己标记为离职。"))
    elif mark_departed and not _may_mark_departed(actor, from_employee):
        plan.error("mark_departed", str(PRIVILEGED_DEPARTURE_MESSAGE))
    if plan.errors:
        return plan

    inheritor_ids = [e.pk for e in inheritors]
    by_id = {e.pk: e for e in inheritors}
    # F's relations: active ones are to hand over; transferred ones to one of these inheritors are a re-run.
    rels = dict(
        FollowRelation.objects.filter(employee=from_employee)
        .filter(Q(status=RelationStatus.ACTIVE) | Q(transferred_to_id__in=inheritor_ids))
        .values_list("customer_id", "transferred_to_id")
    )
    if customer_ids is None:
        wanted = sorted(rels)
    else:
        try:
            wanted = sorted({int(c) for c in customer_ids})
        except (TypeError, ValueError):
            plan.error("customers", _("客户编号无效。"))
            return plan
        unknown = [c for c in wanted if c not in rels]
        if unknown:
            plan.error(
                "customers",
                _("原跟进成员没有跟进这些客户：%(ids)s。") % {"ids": ", ".join(map(str, unknown[:20]))},
                customers=unknown,
            )
    wanted_set = set(wanted)
    stray = [c for c in assignment if c not in wanted_set]
    if stray:
        plan.error("assignment", _("指定了不在本次继承中的客户：%(ids)s。") % {"ids": ", ".join(map(str, stray[:20]))})
    if not wanted and not plan.errors:
        plan.error("customers", _("%(name)s 没有可继承的客户。") % {"name": from_employee})
    if plan.errors:
        return plan

    # Who gets what: a customer already handed to an inheritor stays theirs; the rest as chosen,
    # else shared evenly round-robin in customer-id order (deterministic).
    round_robin = 0
    for cid in wanted:
        previous = rels[cid]
        chosen = assignment.get(cid)
        if previous is not None:
            if chosen is not None and chosen.pk != previous:
                plan.error(
                    "assignment",
                    _("客户 %(id)s 已转接给 %(name)s，不能再分配给别人。") % {"id": cid, "name": by_id[previous]},
                )
                continue
            plan.assignment[cid] = previous
        elif chosen is not None:
            plan.assignment[cid] = chosen.pk
        else:
            plan.assignment[cid] = inheritor_ids[round_robin % len(inheritor_ids)]
            round_robin += 1
    if plan.errors:
        return plan

    plan.inheritors = [InheritorPlan(employee=e) for e in inheritors]
    per = {i.employee.pk: i for i in plan.inheritors}
    for cid, tid in plan.assignment.items():
        per[tid].customer_ids.append(cid)
        if rels[cid] is not None:
            per[tid].already_transferred += 1
    _plan_counts(plan, from_employee, per)
    return plan


def _plan_counts(plan: TransferPlan, from_employee: Employee, per: dict[int, InheritorPlan]) -> None:
    """Fill in the merge, personal tag, note and message counts: a few grouped queries.

    A big transfer is (nearly) all of the employee's customers: rather than ship thousands of ids
    in an IN list, read the employee's rows and keep those of the transfer's customers."""
    assignment = plan.assignment
    cids = list(assignment)

    def of_transfer(qs):
        return qs.filter(customer_id__in=cids) if len(cids) <= 2000 else qs

    following = FollowRelation.objects.filter(employee_id__in=list(per), status=RelationStatus.ACTIVE)
    for cid, tid in of_transfer(following).values_list("customer_id", "employee_id"):
        if assignment.get(cid) == tid:
            per[tid].already_following += 1
    names: dict[int, set[str]] = defaultdict(set)
    tag_names = dict(PersonalTag.objects.filter(owner=from_employee).values_list("pk", "name"))
    taggings = PersonalTagging.objects.filter(personal_tag_id__in=list(tag_names))
    for cid, tag_id in of_transfer(taggings).values_list("customer_id", "personal_tag_id"):
        tid = assignment.get(cid)
        if tid is None:
            continue
        per[tid].personal_taggings += 1
        names[tid].add(tag_names[tag_id].lower())
    # Personal tags are their owner's alone (rule 9): the plan holds counts, never names.
    for tid, lowered in names.items():
        per[tid].personal_tags = len(lowered)
        existing = PersonalTag.objects.filter(owner_id=tid).annotate(lname=Lower("name"))
        per[tid].conflicts = existing.filter(lname__in=list(lowered)).count()
    for model, attr, author in ((Note, "notes", "author"), (Message, "messages", "employee")):
        rows = of_transfer(model.objects.filter(**{author: from_employee})).values("customer_id")
        for cid, n in rows.annotate(n=Count("id")).values_list("customer_id", "n"):
            tid = assignment.get(cid)
            if tid is not None:
                setattr(per[tid], attr, getattr(per[tid], attr) + n)


def transfer_preview(
    *,
    actor: Actor,
    from_employee: Employee | None,
    to_employees: Sequence[Employee],
    keep_portrait: bool = True,
    customer_ids: Iterable[int] | None = None,
    assignment: Mapping[int, Employee] | None = None,
    mark_departed: bool = True,
) -> TransferPlan:
    """What a transfer would do, writing nothing: counts per inheritor, conflicts, and `errors`."""
    _check_caller(actor)
    plan = _plan(
        actor=actor,
        from_employee=from_employee,
        to_employees=to_employees,
        keep_portrait=keep_portrait,
        customer_ids=customer_ids,
        assignment=assignment,
        mark_departed=mark_departed,
    )
    if plan.ok and from_employee is not None:
        running = _running_transfer(from_employee, close_stale=False)
        if running is not None:
            plan.error("from_employee", _running_message(from_employee, running))
    return plan


def _running_message(from_employee: Employee, running: Transfer) -> str:
    return _("%(name)s 的客户继承 #%(id)s 正在进行中。") % {"name": from_employee, "id": running.pk}


def _running_transfer(from_employee: Employee, *, close_stale: bool = True) -> Transfer | None:
    """The unfinished transfer of this employee, if any; one whose job has ended is closed first."""
    unfinished = Transfer.objects.filter(from_employee=from_employee, finished_at__isnull=True).select_related("job")
    for transfer in unfinished:
        if transfer.job is not None and transfer.job.status in FINISHED_JOB_STATUSES:
            if not close_stale:
                continue
            Transfer.objects.filter(pk=transfer.pk).update(finished_at=transfer.job.finished_at or timezone.now())
            continue
        return transfer
    return None


@transaction.atomic
def transfer_start(
    *,
    actor: Actor,
    from_employee: Employee,
    to_employees: Sequence[Employee],
    keep_portrait: bool = True,
    customer_ids: Iterable[int] | None = None,
    assignment: Mapping[int, Employee] | None = None,
    mark_departed: bool = True,
) -> Transfer:
    """Start a 离职继承 (`mark_departed`) or 在职继承: validate, mark departed, queue the job.

    Raises NotAllowed (caller not HR / enterprise admin), ValidationFailed (bad inheritors or
    customers; `details` lists them), Conflict (a transfer of this employee is already running).
    Nothing is written on error.
    """
    _check_caller(actor)
    if from_employee is None:
        raise ValidationFailed(_("请指定原跟进成员。"), details=[{"field": "from_employee"}])
    # The employee's row lock serialises concurrent starts; the partial unique index
    # `transfer_one_running_per_employee` is the guarantee behind it.
    Employee.objects.select_for_update().filter(pk=from_employee.pk).first()
    running = _running_transfer(from_employee)
    if running is not None:
        raise Conflict(_running_message(from_employee, running), details={"transfer": running.pk})
    if mark_departed and not _may_mark_departed(actor, from_employee):
        raise NotAllowed(str(PRIVILEGED_DEPARTURE_MESSAGE), details=[{"field": "mark_departed"}])
    plan = _plan(
        actor=actor,
        from_employee=from_employee,
        to_employees=to_employees,
        keep_portrait=keep_portrait,
        customer_ids=customer_ids,
        assignment=assignment,
        mark_departed=mark_departed,
    )
    if not plan.ok:
        raise ValidationFailed(plan.errors[0]["message"], details=plan.errors)

    if mark_departed and from_employee.status != EmployeeStatus.DEPARTED:
        from_employee.status = EmployeeStatus.DEPARTED
        from_employee.save(update_fields=["status", "is_active", "departed_at"])
    try:
        with transaction.atomic():
            transfer = Transfer.objects.create(
                from_employee=from_employee,
                keep_portrait=plan.keep_portrait,
                mark_departed=mark_departed,
                customer_ids=sorted(int(c) for c in customer_ids) if customer_ids is not None else None,
                created_by_employee=actor.employee,
                created_by_client=actor.api_client,
            )
    except IntegrityError:
        raise Conflict(_("%(name)s 的客户继承正在进行中。") % {"name": from_employee})
    transfer.to_employees.set([i.employee for i in plan.inheritors])
    _create_items(transfer, plan.assignment)
    from .jobs import job_create

    job = job_create(kind=JobKind.TRANSFER, actor=actor, params={"transfer": transfer.pk}, total=len(plan.assignment))
    transfer.job = job
    transfer.save(update_fields=["job"])
    run_transfer_started_handlers(actor=actor, transfer=transfer)
    return transfer


def _create_items(transfer: Transfer, assignment: dict[int, int]) -> None:
    """One pending item per customer, with its inheritor (one INSERT ... SELECT unnest on PostgreSQL)."""
    if SET_BASED_SQL and connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                f"""INSERT INTO {TransferItem._meta.db_table}
                           (transfer_id, customer_id, to_employee_id, outcome, detail)
                    SELECT %s, c, t, %s, '{{}}'::jsonb FROM unnest(%s::bigint[], %s::bigint[]) AS items(c, t)""",
                [transfer.pk, TransferOutcome.PENDING, list(assignment), list(assignment.values())],
            )
        return
    TransferItem.objects.bulk_create(
        [TransferItem(transfer=transfer, customer_id=cid, to_employee_id=tid) for cid, tid in assignment.items()],
        batch_size=5000,
    )


def transfer_get(*, actor: Actor, pk: int) -> Transfer:
    transfer = visible_transfers(actor).filter(pk=pk).first()
    if transfer is None:
        raise NotFound(_("客户继承不存在。"))
    return transfer


# ---------------------------------------------------------------- the job: chunks of items


@dataclass
class ChunkResult:
    processed: int = 0
    outcomes: Counter = field(default_factory=Counter)
    failures: list[dict] = field(default_factory=list)


def _actor_fields(transfer: Transfer) -> dict:
    return {
        "actor_employee_id": transfer.created_by_employee_id,
        "actor_client_id": transfer.created_by_client_id,
        "actor_label": f"transfer #{transfer.pk}",
    }


def transfer_process_chunk(*, transfer: Transfer, job: Job | None = None, chunk_size: int = CHUNK_SIZE) -> ChunkResult:
    """Move the next `chunk_size` pending customers of `transfer`, set-based, in one transaction.

    Returns how many items it settled (0: nothing left; the transfer is then marked finished).
    Items are claimed with `FOR UPDATE SKIP LOCKED`, so a re-queued job running next to a
    stale one never moves a customer twice.
    """
    result = ChunkResult()
    with transaction.atomic():
        items = list(
            TransferItem.objects.filter(transfer=transfer, outcome=TransferOutcome.PENDING)
            .select_for_update(skip_locked=True)
            .order_by("id")[:chunk_size]
        )
        if not items:
            if not TransferItem.objects.filter(transfer=transfer, outcome=TransferOutcome.PENDING).exists():
                Transfer.objects.filter(pk=transfer.pk, finished_at__isnull=True).update(finished_at=timezone.now())
            return result
        _apply(transfer, items, job, result)
    return result


def _apply(transfer: Transfer, items: list[TransferItem], job: Job | None, result: ChunkResult) -> None:
    now = timezone.now()
    from_id = transfer.from_employee_id
    keep = transfer.keep_portrait
    cids = [i.customer_id for i in items]
    inheritor_ids = {i.to_employee_id for i in items}
    # Rows, not model instances: a chunk reads thousands of relations and changes them set-based.
    rels = {
        (r.customer_id, r.employee_id): r
        for r in FollowRelation.objects.filter(
            customer_id__in=cids, employee_id__in=inheritor_ids | {from_id}
        ).values_list(
            "pk", "customer_id", "employee_id", "status", "transferred_to_id", "portrait_kept", "remark",
            "description", "added_at", "add_way", "state", named=True,
        )
    }

    archive_ids: dict[int, list[int]] = defaultdict(list)  # inheritor → F's relations to archive
    portrait_now_kept: list[int] = []  # F's archived relations whose portrait now goes along
    created: list[tuple] = []  # (customer, inheritor, F's relation row)
    updated: list[FollowRelation] = []
    ok: list[TransferItem] = []
    for item in items:
        cid, tid = item.customer_id, item.to_employee_id
        rf, rt = rels.get((cid, from_id)), rels.get((cid, tid))
        detail: dict = {}
        if rf is None or (rf.status == RelationStatus.TRANSFERRED and rf.transferred_to_id != tid):
            item.outcome = TransferOutcome.FAILED
            item.detail = {"reason": _("原跟进成员已不再跟进该客户。")}
            result.failures.append({"customer": cid, "error": item.detail["reason"]})
            continue
        changed = False
        first_move = rf.status == RelationStatus.ACTIVE
        if not first_move and (rt is None or rt.status != RelationStatus.ACTIVE):
            # A re-run after the inheritor has let the customer go (or handed it on): leave it be.
            item.outcome, item.detail = TransferOutcome.UNCHANGED, {"reason": _("继承人已不再跟进该客户，未改动。")}
            continue
        if first_move:
            archive_ids[tid].append(rf.pk)
            changed = True
        elif keep and not rf.portrait_kept:
            portrait_now_kept.append(rf.pk)
            detail["portrait"] = "carried_over"
            changed = True
        merged = first_move and rt is not None and rt.status == RelationStatus.ACTIVE
        if rt is None:
            created.append((cid, tid, rf))
            changed = True
        else:
            target = FollowRelation(
                pk=rt.pk, customer_id=cid, employee_id=tid, status=rt.status, transferred_to_id=rt.transferred_to_id,
                portrait_kept=rt.portrait_kept, remark=rt.remark, description=rt.description,
            )
            dirty = False
            if rt.status != RelationStatus.ACTIVE:
                # T had handed this customer on before and now gets it back: the archive becomes live again.
                target.status, target.transferred_to_id = RelationStatus.ACTIVE, None
                target.transferred_at = target.portrait_kept = None
                detail["reactivated"] = True
                dirty = True
            if keep:
                if not rt.remark and rf.remark:
                    target.remark = rf.remark
                    dirty = True
                if rf.description and rf.description not in rt.description:
                    target.description = f"{rt.description}\n{rf.description}" if rt.description else rf.description
                    dirty = True
            if dirty:
                updated.append(target)
                changed = True
        item.outcome = TransferOutcome.MERGED if merged else TransferOutcome.MOVED
        item.detail = detail
        item._changed = changed
        ok.append(item)

    for tid, ids in archive_ids.items():
        FollowRelation.objects.filter(pk__in=ids).update(
            status=RelationStatus.TRANSFERRED, transferred_to_id=tid, transferred_at=now, portrait_kept=keep
        )
    if portrait_now_kept:
        FollowRelation.objects.filter(pk__in=portrait_now_kept).update(portrait_kept=True)
    if created:
        _create_inherited_relations(created, from_id, keep)
    if updated:
        FollowRelation.objects.bulk_update(
            updated, ["remark", "description", "status", "transferred_to", "transferred_at", "portrait_kept"],
            batch_size=1000,
        )

    if keep and ok:
        added = _carry_personal_tags(transfer, ok, job, now)
        for item in ok:
            if added.get(item.customer_id):
                item.detail["personal_tags"] = added[item.customer_id]
                item._changed = True
        notes = dict(
            Note.objects.filter(customer_id__in=[i.customer_id for i in ok], author_id=from_id)
            .values("customer_id").annotate(n=Count("id")).values_list("customer_id", "n")
        )
        for item in ok:
            if notes.get(item.customer_id):
                item.detail["notes"] = notes[item.customer_id]

    for item in ok:
        if not item._changed:
            item.outcome = TransferOutcome.UNCHANGED
        item.done_at = now
    for item in items:
        item.done_at = now
        result.outcomes[item.outcome] += 1
    # Few distinct (outcome, detail) pairs per chunk: one UPDATE each beats a per-row CASE.
    groups: dict[str, list[int]] = defaultdict(list)
    for item in items:
        groups[json.dumps([item.outcome, item.detail], sort_keys=True, ensure_ascii=False)].append(item.pk)
    for key, ids in groups.items():
        outcome, detail = json.loads(key)
        TransferItem.objects.filter(pk__in=ids).update(outcome=outcome, detail=detail, done_at=now)
    touched = [i.customer_id for i in ok if i.outcome != TransferOutcome.UNCHANGED]
    if touched:
        Customer.objects.filter(pk__in=touched).update(updated_at=now)
    result.processed = len(items)


def _create_inherited_relations(created: list[tuple], from_id: int, keep: bool) -> None:
    """The inheritors' new active relations, copied from F's (remark and description only with the portrait)."""
    if SET_BASED_SQL and connection.vendor == "postgresql":
        table = FollowRelation._meta.db_table
        with connection.cursor() as cursor:
            cursor.execute(
                f"""
                INSERT INTO {table} (customer_id, employee_id, remark, description, added_at, add_way, state, status)
                SELECT f.customer_id, items.to_employee_id,
                       CASE WHEN %s THEN f.remark ELSE '' END, CASE WHEN %s THEN f.description ELSE '' END,
                       f.added_at, f.add_way, f.state, %s
                  FROM unnest(%s::bigint[], %s::bigint[]) AS items(customer_id, to_employee_id)
                  JOIN {table} f ON f.customer_id = items.customer_id AND f.employee_id = %s
                ON CONFLICT (customer_id, employee_id) DO NOTHING
                """,
                [keep, keep, RelationStatus.ACTIVE, [c for c, _t, _r in created], [t for _c, t, _r in created],
                 from_id],
            )
        return
    FollowRelation.objects.bulk_create(
        [
            FollowRelation(
                customer_id=cid, employee_id=tid, remark=rf.remark if keep else "",
                description=rf.description if keep else "", added_at=rf.added_at, add_way=rf.add_way,
                state=rf.state, status=RelationStatus.ACTIVE,
            )
            for cid, tid, rf in created
        ],
        batch_size=2000,
        ignore_conflicts=True,
    )


def _carry_personal_tags(transfer: Transfer, items: list[TransferItem], job: Job | None, now) -> dict[int, int]:
    """F's personal tags on these customers become each inheritor's, merged by name; audited.

    Returns the number of personal taggings added per customer.
    """
    to_of = {i.customer_id: i.to_employee_id for i in items}
    rows = PersonalTagging.objects.filter(
        customer_id__in=list(to_of), personal_tag__owner_id=transfer.from_employee_id
    ).values_list("customer_id", "personal_tag__name")
    wanted: list[tuple[int, int, str]] = []  # (customer, inheritor, lowered name)
    names: dict[int, dict[str, str]] = defaultdict(dict)  # inheritor → lowered → name as written
    for cid, name in rows:
        tid = to_of[cid]
        wanted.append((cid, tid, name.lower()))
        names[tid].setdefault(name.lower(), name)
    if not wanted:
        return {}

    def inheritor_tags() -> dict[tuple[int, str], PersonalTag]:
        found = {}
        for tid, lowered in names.items():
            for tag in PersonalTag.objects.filter(owner_id=tid).annotate(lname=Lower("name")).filter(
                lname__in=list(lowered)
            ):
                found[(tid, tag.lname)] = tag
        return found

    tags = inheritor_tags()
    missing = [
        PersonalTag(owner_id=tid, name=name)
        for tid, lowered in names.items()
        for lname, name in lowered.items()
        if (tid, lname) not in tags
    ]
    if missing:
        PersonalTag.objects.bulk_create(missing, ignore_conflicts=True)
        tags = inheritor_tags()

    if SET_BASED_SQL and connection.vendor == "postgresql":
        return _insert_taggings_sql(transfer, to_of, job, now)
    pairs = {(tags[(tid, lname)].pk, cid) for cid, tid, lname in wanted}
    existing = set(
        PersonalTagging.objects.filter(
            personal_tag_id__in={p[0] for p in pairs}, customer_id__in={p[1] for p in pairs}
        ).values_list("personal_tag_id", "customer_id")
    )
    new = sorted(pairs - existing)
    if not new:
        return {}
    PersonalTagging.objects.bulk_create(
        [PersonalTagging(personal_tag_id=tag_id, customer_id=cid, created_at=now) for tag_id, cid in new],
        batch_size=5000,
        ignore_conflicts=True,
    )
    by_pk = {t.pk: t for t in tags.values()}
    actor = _actor_fields(transfer)
    TagEvent.objects.bulk_create(
        [
            TagEvent(
                customer_id=cid,
                personal_tag_id=tag_id,
                tag_name=by_pk[tag_id].name,
                action=TagAction.ADD,
                source=TagSource.TRANSFER,
                job=job,
                created_at=now,
                **actor,
            )
            for tag_id, cid in new
        ],
        batch_size=5000,
    )
    return dict(Counter(cid for _tag, cid in new))


SET_BASED_SQL = True
"""On PostgreSQL the personal taggings and their audit rows are written by one INSERT ... SELECT
(no model instances); elsewhere, or with this off, by `bulk_create`. Both give the same rows."""


def _insert_taggings_sql(transfer: Transfer, to_of: dict[int, int], job: Job | None, now) -> dict[int, int]:
    """F's personal taggings on the chunk's customers, re-pointed to each inheritor's same-named tag
    (which exists by now), inserted unless present, and one audit row per row actually inserted."""
    tagging, tag, event = PersonalTagging._meta.db_table, PersonalTag._meta.db_table, TagEvent._meta.db_table
    actor = _actor_fields(transfer)
    sql = f"""
        WITH items(customer_id, to_employee_id) AS (SELECT * FROM unnest(%s::bigint[], %s::bigint[])),
        added AS (
            INSERT INTO {tagging} (customer_id, personal_tag_id, created_at)
            SELECT x.customer_id, heir_tag.id, %s
              FROM {tagging} x
              JOIN {tag} own ON own.id = x.personal_tag_id AND own.owner_id = %s
              JOIN items ON items.customer_id = x.customer_id
              JOIN {tag} heir_tag ON heir_tag.owner_id = items.to_employee_id AND lower(heir_tag.name) = lower(own.name)
            ON CONFLICT (personal_tag_id, customer_id) DO NOTHING
            RETURNING customer_id, personal_tag_id
        )
        INSERT INTO {event} (customer_id, tag_id, personal_tag_id, tag_name, action, source,
                             actor_employee_id, actor_client_id, actor_label, job_id, created_at)
        SELECT added.customer_id, NULL, added.personal_tag_id, t.name, %s, %s, %s, %s, %s, %s, %s
          FROM added JOIN {tag} t ON t.id = added.personal_tag_id
        RETURNING customer_id
    """
    params = [
        list(to_of), list(to_of.values()), now, transfer.from_employee_id,
        TagAction.ADD, TagSource.TRANSFER, actor["actor_employee_id"], actor["actor_client_id"], actor["actor_label"],
        job.pk if job is not None else None, now,
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return dict(Counter(row[0] for row in cursor.fetchall()))


def transfer_run(*, transfer: Transfer, job: Job | None = None, chunk_size: int = CHUNK_SIZE) -> Counter:
    """Process every pending item of `transfer` (chunk by chunk); returns the outcome counts."""
    totals: Counter = Counter()
    while True:
        result = transfer_process_chunk(transfer=transfer, job=job, chunk_size=chunk_size)
        if not result.processed:
            return totals
        totals.update(result.outcomes)


# ---------------------------------------------------------------- the TRANSFER job kind


def _register_job_handler() -> None:
    from .jobs import Chunk, JobHandler, job_handler

    @job_handler(JobKind.TRANSFER)
    class TransferJob(JobHandler):
        """Runs a `Transfer`: the next pending items per chunk (per-item state, no cursor needed)."""

        # Per-chunk costs (claim, commit, progress) dominate below ~1000 customers; progress still ticks every ~1 s.
        chunk_size = 1000
        min_chunk_size = 1000
        max_chunk_size = 5000

        def prepare(self, job: Job) -> int | None:
            return TransferItem.objects.filter(transfer__job=job).count()

        def run_chunk(self, job: Job, cursor, size: int):
            transfer = Transfer.objects.get(job=job)
            result = transfer_process_chunk(transfer=transfer, job=job, chunk_size=size)
            if not result.processed:
                return None
            return Chunk(done=result.processed, failed=result.failures, counts=dict(result.outcomes))

        def finish(self, job: Job) -> None:
            Transfer.objects.filter(job=job, finished_at__isnull=True).update(finished_at=timezone.now())


_register_job_handler()
