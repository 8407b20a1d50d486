"""The tag outbox: enterprise-tag changes made in the portal reach WeCom through
`externalcontact/mark_tag` (DESIGN rule 17), once each, in order per customer.

The outbox is the tagging audit itself (`customers.TagEvent`, written in the same transaction as
every change). Two steps, run by the `wecom.push_outbox` task:

1. **Collect** (`outbox_collect`, one transaction): read the audit past `OutboxCursor.position`,
   keep enterprise-tag changes whose source is not `wecom` (what came from WeCom is not echoed
   back), and fold them per customer into `OutboxItem`s: the last change of each tag wins, a
   customer's pending item absorbs new changes, an item being sent is left alone (the new changes
   wait in the next item). The cursor moves in the same transaction, so each event is folded once.

   Ids come from a sequence *before* commit: a reader can see event 104 while 103's transaction
   has not committed yet. Ids skipped that way are kept as **gaps** and re-read on every pass
   until no transaction that could still fill them is running (PostgreSQL: the snapshot's oldest
   running xid has passed the next-xid recorded a pass after the gap was seen; SQLite, whose
   writers are serial, after `GAP_SECONDS`). A gap left by a rolled-back transaction simply expires.

2. **Push** (`outbox_push`): claim due items, oldest first, never an item whose customer has an
   older unfinished item (order per customer); mark them `sending` (committed), call `mark_tag`
   per follow relation — adds on the acting employee's relation when they follow the customer,
   else on the first active follower's; removals on every active relation — then mark them done.
   Failures are retried with backoff (`retry_delay`), up to `MAX_ATTEMPTS`, then kept as failed.

   A worker killed while sending leaves its items `sending`. When they are claimed again (by the
   restarted worker at once, otherwise after `LEASE_SECONDS`), the contact is re-read from WeCom
   (`externalcontact/get`, each follower's tags) and only what is still missing is sent: mark_tag
   is idempotent, and so nothing is lost and no change is sent twice. A retry does the same, and
   also drops what the portal has changed since (a later item carries the newer change).

The first pass starts at the audit's beginning (coalesced per customer, that is each customer's
current tags); a full pull makes WeCom's tags the portal's and moves the position to the audit's end.
A relation WeCom does not have (84061, e.g. a customer a CRM created) is skipped, not retried.

Tags without a WeCom id (`Tag.external_id`) are skipped; the corp-tag push
(`wecom.taxonomy`) runs first in each pass, so a tag created in the portal has its id by then.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, Max, OuterRef, Q
from django.utils import timezone

from channels.models import ChannelAdd
from customers.models import FollowRelation, RelationStatus, TagEvent, Tagging, TagSource
from tags.models import Tag

from .client import WeComError
from .sync_models import OutboxCursor, OutboxItem, OutboxStatus

logger = logging.getLogger(__name__)

READ_BATCH = 5000
NOT_EXTERNAL_CONTACT = 84061
MAX_ATTEMPTS = 8
GAP_SECONDS = 120  # SQLite: a gap older than this is final
GAP_SETTLE_SECONDS = 1.0  # PostgreSQL: record the gap's xid horizon at least this long after it was seen
MAX_GAPS = 2000


def lease_seconds() -> int:
    return int(getattr(settings, "WECOM_OUTBOX_LEASE_SECONDS", 120))


def retry_delay(attempts: int) -> timedelta:
    base = float(getattr(settings, "WECOM_OUTBOX_RETRY_SECONDS", 10))
    return timedelta(seconds=min(base * 2 ** max(attempts - 1, 0), 3600))


# ------------------------------------------------------------------ collect


def _xid_bounds() -> tuple[int, int] | None:
    """(xmin, xmax) of the current snapshot on PostgreSQL: every xid < xmin has ended."""
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cur:
        cur.execute("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint, "
                    "pg_snapshot_xmax(pg_current_snapshot())::text::bigint")
        return tuple(cur.fetchone())


def _cursor_locked() -> OutboxCursor:
    OutboxCursor.objects.get_or_create(pk=1)
    return OutboxCursor.objects.select_for_update().get(pk=1)


def _start_position() -> int:
    """The audit's current end."""
    last = TagEvent.objects.order_by("-pk").values_list("pk", flat=True).first()
    return last or 0


def _remaining_gaps(gaps: list, found: set[int]) -> list:
    """Split the gap ranges around the ids found in them."""
    out = []
    for lo, hi, seen_at, horizon in gaps:
        inside = sorted(i for i in found if lo <= i <= hi)
        start = lo
        for i in inside:
            if i > start:
                out.append([start, i - 1, seen_at, horizon])
            start = i + 1
        if start <= hi:
            out.append([start, hi, seen_at, horizon])
    return out


@dataclass
class CollectResult:
    events: int = 0
    folded: int = 0
    position: int = 0
    gaps: int = 0


EVENT_FIELDS = ("pk", "customer_id", "tag_id", "action", "source", "actor_employee_id")


@transaction.atomic
def outbox_collect(*, limit: int = READ_BATCH) -> CollectResult:
    """Read the audit past the cursor (and its gaps) and fold the changes into outbox items."""
    state = _cursor_locked()
    bounds = _xid_bounds()  # before the reads: what has ended by now is visible to them
    now = timezone.now()
    gap_rows = []
    if state.gaps:
        q = Q()
        for lo, hi, *_rest in state.gaps:
            q |= Q(pk__gte=lo, pk__lte=hi)
        gap_rows = list(TagEvent.objects.filter(q).order_by("pk").values(*EVENT_FIELDS))
    new_rows = list(TagEvent.objects.filter(pk__gt=state.position).order_by("pk")[:limit].values(*EVENT_FIELDS))

    gaps = _remaining_gaps(state.gaps, {r["pk"] for r in gap_rows})
    expected = state.position + 1
    for row in new_rows:
        if row["pk"] > expected:
            gaps.append([expected, row["pk"] - 1, now.isoformat(), None])
        expected = row["pk"] + 1
    if new_rows:
        state.position = new_rows[-1]["pk"]
    gaps = _settle_gaps(gaps, bounds, now)

    folded = _fold(gap_rows + new_rows, late={r["customer_id"] for r in gap_rows})
    state.gaps = gaps
    state.updated_at = now
    state.save(update_fields=["position", "gaps", "updated_at"])
    return CollectResult(events=len(gap_rows) + len(new_rows), folded=folded, position=state.position, gaps=len(gaps))


def _settle_gaps(gaps: list, bounds, now) -> list:
    """Drop the gaps no running transaction can fill any more; record horizons for new ones."""
    from datetime import datetime

    kept = []
    for lo, hi, seen_at, horizon in gaps:
        seen = datetime.fromisoformat(seen_at)
        if bounds is None:
            if (now - seen).total_seconds() < GAP_SECONDS:
                kept.append([lo, hi, seen_at, horizon])
            continue
        xmin, xmax = bounds
        if horizon is None:
            # Record the horizon a moment after the gap was seen: by then the transaction that
            # took those ids has its xid (assigned by the same INSERT that drew them).
            if (now - seen).total_seconds() >= GAP_SETTLE_SECONDS:
                horizon = xmax
            kept.append([lo, hi, seen_at, horizon])
        elif xmin < horizon:
            kept.append([lo, hi, seen_at, horizon])
        # else: every transaction older than the horizon has ended and this pass read the range
    if len(kept) > MAX_GAPS:  # a pathological number of aborted transactions: keep the newest
        logger.warning("tag outbox: %s open gaps, dropping the oldest", len(kept))
        kept = kept[-MAX_GAPS:]
    return kept


def _code_receivers(rows: list[dict]) -> dict[tuple[int, int], int]:
    """{(customer, tag): employee} for channel codes' tags: a code's tag belongs on the relation that
    came through the code (its receiver's), which its audit row, naming no employee, does not say;
    the code's add (`ChannelAdd.tags_added`) does. The newest add wins."""
    customers = {r["customer_id"] for r in rows if r["source"] == TagSource.CHANNEL and not r["actor_employee_id"]}
    receivers: dict[tuple[int, int], int] = {}
    if customers:
        adds = ChannelAdd.objects.filter(customer_id__in=customers).order_by("added_at", "pk")
        for customer_id, employee_id, tags in adds.values_list("customer_id", "employee_id", "tags_added"):
            for tag_id in tags or ():
                receivers[customer_id, tag_id] = employee_id
    return receivers


def _fold(rows: list[dict], *, late: set[int] = frozenset()) -> int:
    """Fold audit rows into per-customer items: {tag id: [action, actor, event id]}, newest wins. The
    actor is the employee whose relation gets an add: the one who made the change, or for a channel
    code's tag, the employee the customer added through the code."""
    receivers = _code_receivers(rows)
    per_customer: dict[int, list[dict]] = defaultdict(list)
    for row in rows:
        if row["tag_id"] is None or row["source"] == TagSource.WECOM:
            continue
        per_customer[row["customer_id"]].append(row)
    if not per_customer:
        return 0
    # Fold only into a customer's newest item, and only while it is pending: an older pending item
    # (waiting to be retried) must not receive changes made after a newer item's.
    newest = (OutboxItem.objects.filter(customer_id__in=list(per_customer)).values("customer_id")
              .annotate(last=Max("id")).values_list("last", flat=True))
    open_items = {
        item.customer_id: item
        for item in OutboxItem.objects.select_for_update().filter(pk__in=list(newest), status=OutboxStatus.PENDING)
    }
    # For customers with events arriving late (a gap filled): the newest change of each tag already
    # queued or sent, which an older event must not override.
    latest: dict[tuple[int, str], int] = {}
    for item in OutboxItem.objects.filter(customer_id__in=list(late & set(per_customer))).only(
            "customer_id", "changes"):
        for tag, (_action, _actor, event_id) in item.changes.items():
            key = (item.customer_id, tag)
            latest[key] = max(latest.get(key, 0), event_id)
    creates, updates = [], []
    for customer_id, events in per_customer.items():
        item = open_items.get(customer_id)
        changes = dict(item.changes) if item else {}
        first = item.first_event_id if item else None
        last = item.last_event_id if item else 0
        for row in sorted(events, key=lambda r: r["pk"]):
            tag = str(row["tag_id"])
            if latest.get((customer_id, tag), 0) > row["pk"]:
                continue
            actor = row["actor_employee_id"] or receivers.get((customer_id, row["tag_id"]))
            changes[tag] = [row["action"], actor, row["pk"]]
            latest[(customer_id, tag)] = row["pk"]
            first = row["pk"] if first is None else min(first, row["pk"])
            last = max(last, row["pk"])
        if item is None:
            if changes:
                creates.append(OutboxItem(customer_id=customer_id, changes=changes, first_event_id=first,
                                          last_event_id=last))
        elif changes != item.changes:
            item.changes, item.first_event_id, item.last_event_id = changes, first, last
            updates.append(item)
    OutboxItem.objects.bulk_create(creates, batch_size=2000)
    OutboxItem.objects.bulk_update(updates, ["changes", "first_event_id", "last_event_id"], batch_size=2000)
    return len(creates) + len(updates)


@transaction.atomic
def outbox_fast_forward() -> int:
    """Start the outbox at the audit's current end (a full pull made WeCom's tags the portal's):
    changes audited before are not pushed. Returns the new position."""
    state = _cursor_locked()
    state.position = _start_position()
    state.gaps = []
    state.updated_at = timezone.now()
    state.save(update_fields=["position", "gaps", "updated_at"])
    return state.position


def outbox_prune(*, days: int = 7) -> int:
    """Forget items sent more than `days` ago (the audit keeps the history)."""
    cutoff = timezone.now() - timedelta(days=days)
    return OutboxItem.objects.filter(status=OutboxStatus.DONE, finished_at__lt=cutoff).delete()[0]


@transaction.atomic
def outbox_enqueue_tag(*, tag: Tag) -> int:
    """Queue "add `tag`" for every customer holding it (the tag was re-created in WeCom)."""
    customer_ids = list(Tagging.objects.filter(tag=tag).values_list("customer_id", flat=True))
    OutboxItem.objects.bulk_create(
        [OutboxItem(customer_id=c, changes={str(tag.pk): ["add", None, 0]}, first_event_id=0, last_event_id=0)
         for c in customer_ids], batch_size=2000)
    return len(customer_ids)


# ------------------------------------------------------------------ push


@dataclass
class PushResult:
    claimed: int = 0
    done: int = 0
    failed: int = 0
    retried: int = 0
    calls: int = 0
    resumed: int = 0
    skipped_tags: int = 0
    errors: list = field(default_factory=list)


def _owner(node: str, boot: str) -> str:
    return f"{node}|{boot}"


@transaction.atomic
def _claim(*, limit: int, node: str, boot: str) -> list[tuple[OutboxItem, bool]]:
    """Due items, the oldest of their customer, locked and marked `sending` (with who sends)."""
    now = timezone.now()
    stale = now - timedelta(seconds=lease_seconds())
    earlier_open = OutboxItem.objects.filter(
        customer_id=OuterRef("customer_id"), pk__lt=OuterRef("pk"),
        status__in=[OutboxStatus.PENDING, OutboxStatus.SENDING])
    orphaned = Q(status=OutboxStatus.SENDING, claimed_at__lt=stale)
    if node:  # a restarted worker on this node takes over its dead predecessor's items at once
        orphaned |= Q(status=OutboxStatus.SENDING, claimed_by__startswith=f"{node}|") & ~Q(
            claimed_by=_owner(node, boot))
    due = Q(status=OutboxStatus.PENDING, next_attempt_at__lte=now) | orphaned
    items = list(
        OutboxItem.objects.filter(due).exclude(Exists(earlier_open)).order_by("pk")
        .select_for_update(skip_locked=True)[:limit]
    )
    claimed = []
    for item in items:
        resume = item.status == OutboxStatus.SENDING or item.attempts > 0
        item.status = OutboxStatus.SENDING
        item.claimed_at = now
        item.attempts += 1
        # Who is sending, so a restarted worker on the same node recognises its dead predecessor's items.
        item.claimed_by = _owner(node, boot) if node else ""
        item.save(update_fields=["status", "claimed_at", "attempts", "claimed_by"])
        claimed.append((item, resume))
    return claimed


def outbox_push(*, api=None, limit: int = 100, node: str = "", boot: str = "") -> PushResult:
    """Claim and send one batch of due items (see the module docstring)."""
    from .taxonomy import client

    api = api or client()
    result = PushResult()
    for item, resume in _claim(limit=limit, node=node, boot=boot):
        result.claimed += 1
        result.resumed += int(resume)
        try:
            calls, skipped = _send(api, item, resume=resume)
        except Exception as exc:  # noqa: BLE001 - WeCom said no or did not answer: retry later
            _failed(item, exc, result)
            continue
        result.calls += len(calls)
        result.skipped_tags += skipped
        OutboxItem.objects.filter(pk=item.pk, status=OutboxStatus.SENDING).update(
            status=OutboxStatus.DONE, finished_at=timezone.now(), sent=calls, last_error="")
        result.done += 1
    return result


def _failed(item: OutboxItem, exc: Exception, result: PushResult) -> None:
    message = str(exc)[:2000]
    if item.attempts >= MAX_ATTEMPTS:
        status, next_at = OutboxStatus.FAILED, item.next_attempt_at
        result.failed += 1
    else:
        status, next_at = OutboxStatus.PENDING, timezone.now() + retry_delay(item.attempts)
        result.retried += 1
    OutboxItem.objects.filter(pk=item.pk).update(
        status=status, next_attempt_at=next_at, last_error=message,
        finished_at=timezone.now() if status == OutboxStatus.FAILED else None)
    result.errors.append({"item": item.pk, "customer": item.customer_id, "error": message})
    logger.warning("tag outbox item %s (customer %s) failed: %s", item.pk, item.customer_id, message)


def _send(api, item: OutboxItem, *, resume: bool) -> tuple[list[dict], int]:
    """The mark_tag calls of one item; on resume only what WeCom does not show yet."""
    # Active relations of active employees (a departed one's customers wait for 离职继承; WeCom
    # refuses to mark on their behalf).
    relations = list(
        FollowRelation.objects.filter(customer_id=item.customer_id, status=RelationStatus.ACTIVE,
                                      employee__status="active")
        .select_related("employee", "customer").order_by("added_at", "pk")
    )
    if not relations:
        return [], 0
    external_userid = relations[0].customer.external_userid
    tag_ids = {int(t) for t in item.changes}
    external = dict(Tag.objects.filter(pk__in=tag_ids, external_id__isnull=False).values_list("pk", "external_id"))
    by_employee = {r.employee_id: r.employee.userid for r in relations}
    first = relations[0].employee.userid
    adds: dict[str, list[str]] = defaultdict(list)
    removes: list[str] = []
    skipped = 0
    for tag, (action, actor_id, _event) in sorted(item.changes.items(), key=lambda kv: kv[1][2]):
        ext = external.get(int(tag))
        if not ext:
            skipped += 1
            continue
        if action == "add":
            adds[by_employee.get(actor_id, first)].append(ext)
        else:
            removes.append(ext)
    have = None
    if resume:
        # A retry or a take-over: WeCom may have part of it already, and the portal may have moved on
        # (a later item holds the newer change): send only what is still true here and missing there.
        have = _wecom_tags(api, external_userid)
        held = {str(t) for t in Tagging.objects.filter(customer_id=item.customer_id).values_list(
            "tag__external_id", flat=True) if t}
        adds = {userid: [t for t in tags if t in held] for userid, tags in adds.items()}
        removes = [t for t in removes if t not in held]
    calls = []
    for userid in [r.employee.userid for r in relations]:
        add, remove = list(adds.get(userid, [])), list(removes)
        if have is not None:
            held = have.get(userid, set())
            add = [t for t in add if t not in held]
            remove = [t for t in remove if t in held]
        if not add and not remove:
            continue
        payload = {"userid": userid, "external_userid": external_userid, "add_tag": add, "remove_tag": remove}
        try:
            api.post("externalcontact/mark_tag", payload)
        except WeComError as exc:
            if exc.errcode != NOT_EXTERNAL_CONTACT:
                raise
            payload["skipped"] = "not an external contact of this employee in WeCom"
        calls.append(payload)
    return calls, skipped


def _wecom_tags(api, external_userid: str) -> dict[str, set[str]]:
    """Each follower's corp tags on the contact, as WeCom has them now (all pages)."""
    have: dict[str, set[str]] = {}
    cursor = ""
    while True:
        params = {"external_userid": external_userid}
        if cursor:
            params["cursor"] = cursor
        try:
            answer = api.get("externalcontact/get", **params)
        except WeComError as exc:
            if exc.errcode != NOT_EXTERNAL_CONTACT:
                raise
            return have
        for follower in answer.get("follow_user") or []:
            have[str(follower.get("userid"))] = {
                str(t.get("tag_id")) for t in follower.get("tags") or [] if int(t.get("type", 1) or 1) == 1}
        cursor = answer.get("next_cursor") or ""
        if not cursor:
            return have


# ------------------------------------------------------------------ status


def outbox_backlog() -> dict:
    """For the status page: items waiting, being sent, failed; audit rows not read yet."""
    counts = dict(
        OutboxItem.objects.filter(status__in=[OutboxStatus.PENDING, OutboxStatus.SENDING, OutboxStatus.FAILED])
        .values_list("status").annotate(n=models_count()).values_list("status", "n"))
    state = OutboxCursor.objects.filter(pk=1).first()
    # The id distance, not a count: cheap on a 10M-row audit (ids a rolled-back transaction drew count too).
    last = TagEvent.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    unread = max(last - (state.position if state else 0), 0)
    return {"pending": counts.get(OutboxStatus.PENDING, 0), "sending": counts.get(OutboxStatus.SENDING, 0),
            "failed": counts.get(OutboxStatus.FAILED, 0), "unread_events": unread,
            "gaps": len(state.gaps) if state else 0}


def models_count():
    from django.db.models import Count

    return Count("id")


@transaction.atomic
def outbox_retry_failed() -> int:
    """Give failed items another round (the status page's button)."""
    # attempts stays > 0: the retry re-reads WeCom and the portal and sends only what still applies.
    return OutboxItem.objects.filter(status=OutboxStatus.FAILED).update(
        status=OutboxStatus.PENDING, attempts=1, next_attempt_at=timezone.now(), finished_at=None)
