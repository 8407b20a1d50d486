"""Matching on the worker: the queue of ingested messages is drained in batches, each batch in one
transaction that deletes its queue rows, writes the hits, the once-only records and the tags.

Exactly once: a message id enters `PendingMessage` in the ingest's own transaction (through
`customers.hooks`), so a committed message is always queued, whatever order the ids were assigned
in (ids come from a sequence *before* commit: a position "last id matched" would skip a message
whose transaction committed late). A batch takes its ids with `DELETE ... RETURNING` on rows locked
`FOR UPDATE SKIP LOCKED` and commits the deletion with its results: a worker killed mid-batch rolls
both back and the next run matches the same messages again; a committed batch never comes back.
Batches are serialised by an advisory lock, so "min_hits within window_days" and "once only" read
the previous batch's committed hits.

Per (rule, message) that contains one of the rule's keywords, in message order:
1. direction not in the rule's `directions` (default `in`), or the customer followed by none of the
   rule's employees / members of its departments: not a hit at all;
2. the message contains an exclude keyword → `excluded` (reason `keyword:<word>`);
3. the customer holds an exclude tag → `excluded` (reason `tag:<name>`);
4. the rule tagged this customer before (even if the tag was removed since), or the customer already
   holds every tag of the rule → `already`;
5. fewer than `min_hits` counted hits within `window_days` → `counted`;
6. a `testing` rule and a customer outside its samples → `shadow` (nothing written but the hit);
7. otherwise → `tagged`: its tags are added through `customers.services` (source `rule`, the rule
   named as actor), and the rule never tags this customer again.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections import defaultdict

from django.db import connection, transaction
from django.utils import timezone

from customers.models import FollowRelation, Message, RelationStatus, Tagging, TagSource
from customers.services import customers_tags_add_by_actors
from org.actors import Actor
from tagportal.errors import ValidationFailed
from tags.models import Tag

from .matcher import Matcher, active_matcher
from .models import HitOutcome, KeywordRule, PendingMessage, RuleHit, RuleStatus, RuleTagged

logger = logging.getLogger(__name__)

BATCH_SIZE = int(os.environ.get("TAGPORTAL_MATCH_BATCH", "0") or 0) or 5000
MATCH_LOCK_KEY = 0x7275_6C65  # "rule": one matching batch at a time
_IN_CHUNK = 20_000


def _pg() -> bool:
    return connection.vendor == "postgresql"


def _ids_param(ids) -> str:
    return "{" + ",".join(map(str, map(int, ids))) + "}"


def messages_queue(*, message_ids: list[int]) -> None:
    """The `customers.hooks` handler: queue new messages for matching, in the ingest's transaction,
    and start matching once it commits."""
    if not message_ids:
        return
    if _pg():
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {PendingMessage._meta.db_table} (message_id) SELECT unnest(%s::bigint[]) "
                "ON CONFLICT DO NOTHING",
                [_ids_param(message_ids)],
            )
    else:
        PendingMessage.objects.bulk_create([PendingMessage(message_id=i) for i in message_ids], batch_size=500,
                                           ignore_conflicts=True)
    transaction.on_commit(_enqueue_matching)


def _enqueue_matching() -> None:
    from .tasks import match_messages

    match_messages.delay()


def messages_match_pending(*, batch_size: int = BATCH_SIZE, max_batches: int | None = None) -> int:
    """Match queued messages until the queue is empty (or `max_batches` ran); returns how many."""
    total = 0
    batches = 0
    while max_batches is None or batches < max_batches:
        done = _match_batch(batch_size)
        if not done:
            break
        total += done
        batches += 1
    return total


@transaction.atomic
def _match_batch(batch_size: int) -> int:
    if _pg():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [MATCH_LOCK_KEY])
            table = PendingMessage._meta.db_table
            cursor.execute(
                f"DELETE FROM {table} WHERE message_id IN (SELECT message_id FROM {table} ORDER BY message_id "
                "LIMIT %s FOR UPDATE SKIP LOCKED) RETURNING message_id",
                [batch_size],
            )
            ids = sorted(r[0] for r in cursor.fetchall())
    else:
        ids = list(PendingMessage.objects.order_by("message_id").values_list("message_id", flat=True)[:batch_size])
        PendingMessage.objects.filter(message_id__in=ids).delete()
    if not ids:
        return 0
    matcher = active_matcher()
    if matcher.size:
        directions = set().union(*(spec.directions for spec in matcher.rules.values()))
        match_rows(matcher, _messages(ids, directions))
    return len(ids)


def _messages(ids: list[int], directions: set[str]) -> list[tuple]:
    """(id, customer_id, employee_id, direction, content, sent_at) of the batch's messages in a direction
    some rule counts, in time order. On PostgreSQL `sent_at` comes as epoch seconds (turned into a
    datetime only for the messages that match: parsing 5,000 timestamps costs more than matching them)."""
    fields = ("id", "customer_id", "employee_id", "direction", "content")
    if _pg():
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT {', '.join(fields)}, EXTRACT(EPOCH FROM sent_at)::float8 FROM {Message._meta.db_table} "
                "WHERE id = ANY(%s::bigint[]) AND direction = ANY(%s::text[]) AND content <> ''",
                [_ids_param(ids), sorted(directions)],
            )
            rows = cursor.fetchall()
    else:
        rows = []
        for start in range(0, len(ids), 500):
            rows.extend(Message.objects.filter(pk__in=ids[start:start + 500], direction__in=directions)
                        .values_list(*fields, "sent_at"))
    rows.sort(key=lambda r: (r[5], r[0]))
    return rows


def _when(value) -> dt.datetime:
    return value if isinstance(value, dt.datetime) else dt.datetime.fromtimestamp(value, tz=dt.UTC)


def _pairs(sql: str, params: list) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _followers(customer_ids: list[int]) -> dict[int, set[int]]:
    followers: dict[int, set[int]] = defaultdict(set)
    if _pg():
        rows = _pairs(f"SELECT customer_id, employee_id FROM {FollowRelation._meta.db_table} "
                      "WHERE customer_id = ANY(%s::bigint[]) AND status = %s",
                      [_ids_param(customer_ids), RelationStatus.ACTIVE])
    else:
        rows = [r for chunk in _chunks(customer_ids, 500) for r in FollowRelation.objects.filter(
            customer_id__in=chunk, status=RelationStatus.ACTIVE).values_list("customer_id", "employee_id")]
    for customer_id, employee_id in rows:
        followers[customer_id].add(employee_id)
    return followers


def _held(customer_ids: list[int], tag_ids: set[int]) -> dict[int, set[int]]:
    held: dict[int, set[int]] = defaultdict(set)
    if not tag_ids:
        return held
    if _pg():
        rows = _pairs(f"SELECT customer_id, tag_id FROM {Tagging._meta.db_table} "
                      "WHERE customer_id = ANY(%s::bigint[]) AND tag_id = ANY(%s::bigint[])",
                      [_ids_param(customer_ids), _ids_param(tag_ids)])
    else:
        rows = [r for chunk in _chunks(customer_ids, 500) for r in Tagging.objects.filter(
            customer_id__in=chunk, tag_id__in=tag_ids).values_list("customer_id", "tag_id")]
    for customer_id, tag_id in rows:
        held[customer_id].add(tag_id)
    return held


def _done(rule_ids: list[int], customer_ids: list[int]) -> set[tuple[int, int]]:
    """(rule, customer) pairs the rule tagged before (once only)."""
    if _pg():
        return set(_pairs(f"SELECT rule_id, customer_id FROM {RuleTagged._meta.db_table} "
                          "WHERE customer_id = ANY(%s::bigint[]) AND rule_id = ANY(%s::bigint[])",
                          [_ids_param(customer_ids), _ids_param(rule_ids)]))
    return {r for chunk in _chunks(customer_ids, 500) for r in RuleTagged.objects.filter(
        rule_id__in=rule_ids, customer_id__in=chunk).values_list("rule_id", "customer_id")}


def _matched(message_ids: set[int]) -> set[tuple[int, int]]:
    """(rule, message) pairs already in the hit log among these messages."""
    ids = sorted(message_ids)
    if _pg():
        return set(_pairs(f"SELECT rule_id, message_id FROM {RuleHit._meta.db_table} "
                          "WHERE message_id = ANY(%s::bigint[])", [_ids_param(ids)]))
    return {r for chunk in _chunks(ids, 500)
            for r in RuleHit.objects.filter(message_id__in=chunk).values_list("rule_id", "message_id")}


def _record_tagged(pairs: set[tuple[int, int]], now) -> None:
    if not pairs:
        return
    if _pg():
        ordered = sorted(pairs)
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {RuleTagged._meta.db_table} (rule_id, customer_id, tagged_at) "
                "SELECT r, c, %s FROM unnest(%s::bigint[], %s::bigint[]) AS x(r, c) ON CONFLICT DO NOTHING",
                [now, _ids_param(r for r, _c in ordered), _ids_param(c for _r, c in ordered)],
            )
        return
    RuleTagged.objects.bulk_create([RuleTagged(rule_id=r, customer_id=c, tagged_at=now) for r, c in pairs],
                                   batch_size=500, ignore_conflicts=True)


def _chunks(items: list, size: int = _IN_CHUNK):
    for start in range(0, len(items), size):
        yield items[start:start + size]


def match_rows(matcher: Matcher, rows: list[tuple], *, now: dt.datetime | None = None) -> dict[str, int]:
    """Match message rows `(id, customer_id, employee_id, direction, content, sent_at)` (in time order)
    against `matcher`'s rules and write hits, once-only records and tags (see the module docstring).
    Returns counts per outcome."""
    now = now or timezone.now()
    rules = matcher.rules
    candidates: list[tuple[tuple, object, object]] = []
    for row in rows:
        content = row[4]
        if not content:
            continue
        for rule_id, match in matcher.match(content).items():
            if not match.keywords:
                continue
            spec = rules[rule_id]
            if row[3] not in spec.directions:
                continue
            candidates.append((row, spec, match))
    counts: dict[str, int] = defaultdict(int)
    if candidates:
        # A message queued again (by hand, or a restored backup) is never matched twice by a rule.
        seen = _matched({row[0] for row, _s, _m in candidates})
        if seen:
            candidates = [c for c in candidates if (c[1].id, c[0][0]) not in seen]
    if not candidates:
        return counts
    customer_ids = sorted({row[1] for row, _s, _m in candidates})
    rule_ids = sorted({spec.id for _r, spec, _m in candidates})

    followers: dict[int, set[int]] = {}
    if any(spec.covered_employees is not None for _r, spec, _m in candidates):
        followers = _followers(customer_ids)
    watched_tags: set[int] = set()
    for rule_id in rule_ids:
        watched_tags |= set(rules[rule_id].tags) | rules[rule_id].exclude_tags
    held = _held(customer_ids, watched_tags)
    tag_names = dict(Tag.objects.filter(pk__in=watched_tags).values_list("pk", "name")) if watched_tags else {}
    done = _done(rule_ids, customer_ids)

    counting = [r for r in rule_ids if rules[r].min_hits > 1]
    earlier: dict[tuple[int, int], list[dt.datetime]] = defaultdict(list)
    if counting:
        oldest = min(_when(row[5]) for row, _s, _m in candidates)
        longest = max((rules[r].window_days or 0) for r in counting)
        qs = RuleHit.objects.filter(rule_id__in=counting).exclude(outcome=HitOutcome.EXCLUDED)
        if all(rules[r].window_days for r in counting):
            qs = qs.filter(sent_at__gte=oldest - dt.timedelta(days=longest))
        for chunk in _chunks(customer_ids):
            for rule_id, customer_id, sent_at in qs.filter(customer_id__in=chunk).values_list(
                "rule_id", "customer_id", "sent_at"
            ):
                earlier[(rule_id, customer_id)].append(sent_at)

    hits: list[RuleHit] = []
    to_tag: dict[int, list[int]] = defaultdict(list)
    tagged_now: set[tuple[int, int]] = set()
    for row, spec, match in candidates:
        message_id, customer_id, _employee_id, _direction, _content, sent_at = row
        sent_at = _when(sent_at)
        key = (spec.id, customer_id)
        if spec.covered_employees is not None and not (followers.get(customer_id, set()) & spec.covered_employees):
            continue
        outcome, reason = HitOutcome.TAGGED, ""
        holding = held.get(customer_id, set())
        if match.excluded_by:
            outcome, reason = HitOutcome.EXCLUDED, f"keyword:{match.excluded_by[0]}"
        elif holding & spec.exclude_tags:
            tag_id = min(holding & spec.exclude_tags)
            outcome, reason = HitOutcome.EXCLUDED, f"tag:{tag_names.get(tag_id, tag_id)}"
        elif key in done or key in tagged_now or (spec.tags and set(spec.tags) <= holding):
            outcome = HitOutcome.ALREADY
        else:
            if spec.min_hits > 1:
                times = earlier[key]
                times.append(sent_at)
                if spec.window_days:
                    start = sent_at - dt.timedelta(days=spec.window_days)
                    within = sum(1 for t in times if start <= t <= sent_at)
                else:
                    within = len(times)
                if within < spec.min_hits:
                    outcome = HitOutcome.COUNTED
            if outcome == HitOutcome.TAGGED and spec.status == RuleStatus.TESTING and customer_id not in spec.samples:
                outcome = HitOutcome.SHADOW
            if outcome == HitOutcome.TAGGED:
                tagged_now.add(key)
                to_tag[spec.id].append(customer_id)
        counts[outcome] += 1
        hits.append(RuleHit(rule_id=spec.id, customer_id=customer_id, message_id=message_id,
                            keyword=match.keywords[0][:50], outcome=outcome, reason=reason[:100], sent_at=sent_at,
                            created_at=now))

    _tag(rules, to_tag)
    _record_tagged(tagged_now, now)
    _write_hits(hits)
    _bump_counters(hits, tagged_now)
    return counts


def _tag(rules, to_tag: dict[int, list[int]]) -> None:
    """Add each rule's tags to its customers through the one tagging service (source `rule`, the
    rule as actor). Tags deleted since the rule set was loaded are left out; a change the service
    refuses (a tag moved into a single-choice group beside another of the rule's tags) is logged and
    skipped, so one broken rule never blocks the queue."""
    if not to_tag:
        return
    existing = set(Tag.objects.filter(pk__in={t for r in to_tag for t in rules[r].tags}).values_list("pk", flat=True))
    changes = [(Actor(label=rules[r].label), customers, [t for t in rules[r].tags if t in existing])
               for r, customers in sorted(to_tag.items())]
    while changes:
        try:
            customers_tags_add_by_actors(changes=changes, source=TagSource.RULE)
            return
        except ValidationFailed as exc:
            index = exc.details.get("index") if isinstance(exc.details, dict) else None
            if index is None:
                raise
            logger.warning("keyword rule %s: tagging refused (%s); skipped", changes[index][0].label, exc.message)
            changes = [c for i, c in enumerate(changes) if i != index]


def _write_hits(hits: list[RuleHit]) -> None:
    if not hits:
        return
    if _pg() and len(hits) > 50:
        columns = ["rule_id", "customer_id", "message_id", "keyword", "outcome", "reason", "sent_at", "created_at"]
        with connection.cursor() as cursor, cursor.copy(
            f"COPY {RuleHit._meta.db_table} ({', '.join(columns)}) FROM STDIN"
        ) as copy:
            for h in hits:
                copy.write_row((h.rule_id, h.customer_id, h.message_id, h.keyword, h.outcome, h.reason, h.sent_at,
                                h.created_at))
        return
    RuleHit.objects.bulk_create(hits, batch_size=2000)


def _bump_counters(hits: list[RuleHit], tagged: set[tuple[int, int]]) -> None:
    per_rule: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for hit in hits:
        per_rule[hit.rule_id][0] += 1
    for rule_id, _c in tagged:
        per_rule[rule_id][1] += 1
    if not per_rule:
        return
    ids = sorted(per_rule)
    if _pg():
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {KeywordRule._meta.db_table} r SET hit_count = r.hit_count + v.h, "
                "tagged_count = r.tagged_count + v.t FROM unnest(%s::bigint[], %s::int[], %s::int[]) AS v(id, h, t) "
                "WHERE r.id = v.id",
                [_ids_param(ids), _ids_param(per_rule[i][0] for i in ids), _ids_param(per_rule[i][1] for i in ids)],
            )
        return
    from django.db.models import F

    for rule_id in ids:
        h, t = per_rule[rule_id]
        KeywordRule.objects.filter(pk=rule_id).update(hit_count=F("hit_count") + h, tagged_count=F("tagged_count") + t)
