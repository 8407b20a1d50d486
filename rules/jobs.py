"""The rules app's job kinds (run by `customers.jobs`, shown on the job page with its live bar):
RULE_BACKTEST (回测: what a rule would have done on stored history; changes nothing) and RULE_UNDO
(撤销: remove the tags a rule added, sparing later changes by others)."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from customers.jobs import Chunk, JobFailed, JobHandler, _apply_operations, job_handler
from customers.models import (
    FollowRelation,
    Job,
    JobKind,
    Message,
    RelationStatus,
    TagAction,
    TagEvent,
    Tagging,
    TagSource,
)
from customers.services import TagOperation
from org.actors import Actor

from .matcher import Matcher, rule_matcher
from .models import Backtest, BacktestCustomer, KeywordRule, RuleTagged, rule_label_prefix

MAX_SAMPLES = 20


def _day_bounds(since: str, until: str) -> tuple[dt.datetime, dt.datetime]:
    start = timezone.make_aware(dt.datetime.combine(dt.date.fromisoformat(since), dt.time.min))
    end = timezone.make_aware(dt.datetime.combine(dt.date.fromisoformat(until) + dt.timedelta(days=1), dt.time.min))
    return start, end


def _rule(job: Job) -> KeywordRule:
    rule = KeywordRule.objects.filter(pk=job.params.get("rule")).first()
    if rule is None:
        raise JobFailed(_("智能标签已被删除。"))
    return rule


@job_handler(JobKind.RULE_BACKTEST)
class BacktestJob(JobHandler):
    """Replays a rule on the messages sent in [since, until], customer by customer (keyset on the
    customer id, each customer's messages in one chunk, so min_hits and counts per customer hold), with
    the customers' current tags and followers. Writes only its own result (`Backtest`,
    `BacktestCustomer`), in the chunk's transaction, so a resumed run neither loses nor doubles any."""

    chunk_size = 2000
    max_chunk_size = 20_000

    def _messages(self, job: Job):
        start, end = _day_bounds(job.params["since"], job.params["until"])
        return Message.objects.filter(sent_at__gte=start, sent_at__lt=end)

    def prepare(self, job: Job) -> int | None:
        return self._messages(job).order_by().count()

    def run_chunk(self, job: Job, cursor, size: int) -> Chunk | None:
        rule = _rule(job)
        backtest = Backtest.objects.select_for_update().get(job=job)
        after = int(cursor or 0)
        fields = ("id", "customer_id", "employee_id", "direction", "content", "sent_at", "msgid")
        qs = self._messages(job).filter(customer_id__gt=after).order_by("customer_id", "sent_at", "id")
        rows = list(qs.values_list(*fields)[:size])
        if not rows:
            return None
        last = rows[-1][1]
        if len(rows) == size:
            if rows[0][1] == last:  # one customer with more messages than a chunk: take them all
                rows = list(qs.filter(customer_id=last).values_list(*fields))
            else:  # the last customer may continue beyond the chunk: leave it whole for the next one
                rows = [r for r in rows if r[1] != last]
                last = rows[-1][1]
        matcher = rule_matcher(rule)
        spec = matcher.rules[rule.pk]
        counts = _replay(matcher, spec, rows, backtest)
        return Chunk(done=len(rows), cursor=last, counts=counts)

    def result_link(self, job: Job) -> tuple[str, str] | None:
        from django.urls import reverse

        return _("查看回测结果"), reverse("admin:rules_keywordrule_backtest_result", args=[job.pk])

    def result(self, job: Job) -> dict | None:
        backtest = Backtest.objects.filter(job=job).first()
        if backtest is None:
            return None
        counts = job.counts or {}
        return {
            "rule": backtest.rule_id,
            "since": backtest.since.isoformat(),
            "until": backtest.until.isoformat(),
            "customers": counts.get("customers", 0),
            "messages": counts.get("messages", 0),
            "already": counts.get("already", 0),
            "excluded_messages": counts.get("excluded_messages", 0),
            "excluded_customers": counts.get("excluded_customers", 0),
            "keywords": [{"keyword": k, "messages": n}
                         for k, n in sorted(backtest.keywords.items(), key=lambda kv: (-kv[1], kv[0]))],
            "sample": backtest.samples,
        }


def _replay(matcher: Matcher, spec, rows: list[tuple], backtest: Backtest) -> dict[str, int]:
    per_customer: dict[int, list[tuple]] = defaultdict(list)
    excluded_messages = 0
    keywords: dict[str, int] = defaultdict(int)
    for row in rows:
        _id, customer_id, _employee, direction, content, sent_at, msgid = row
        if direction not in spec.directions or not content:
            continue
        match = matcher.match(content).get(spec.id)
        if match is None or not match.keywords:
            continue
        if match.excluded_by:
            excluded_messages += 1
            continue
        per_customer[customer_id].append((sent_at, row, match))
    customer_ids = sorted(per_customer)
    if spec.covered_employees is not None and customer_ids:
        covered = set(FollowRelation.objects.filter(
            customer_id__in=customer_ids, status=RelationStatus.ACTIVE, employee_id__in=spec.covered_employees
        ).values_list("customer_id", flat=True))
        customer_ids = [c for c in customer_ids if c in covered]
    held: dict[int, set[int]] = defaultdict(set)
    watched = set(spec.tags) | spec.exclude_tags
    if customer_ids and watched:
        for c, t in Tagging.objects.filter(customer_id__in=customer_ids, tag_id__in=watched).values_list(
            "customer_id", "tag_id"
        ):
            held[c].add(t)
    matched_customers, matched_messages, excluded_customers, already = [], 0, 0, 0
    samples = list(backtest.samples)
    for customer_id in customer_ids:
        hits = sorted(per_customer[customer_id], key=lambda h: (h[0], h[1][0]))
        if held[customer_id] & spec.exclude_tags:
            excluded_customers += 1
            continue
        fires = False
        if spec.min_hits <= 1:
            fires = bool(hits)
        else:
            times = [h[0] for h in hits]
            for index, when in enumerate(times):
                start = when - dt.timedelta(days=spec.window_days) if spec.window_days else None
                within = sum(1 for t in times[: index + 1] if start is None or t >= start)
                if within >= spec.min_hits:
                    fires = True
                    break
        if not fires:
            continue
        matched_customers.append(customer_id)
        matched_messages += len(hits)
        if spec.tags and set(spec.tags) <= held[customer_id]:
            already += 1
        for _when, row, match in hits:
            for keyword in match.keywords:
                keywords[keyword] += 1
            if len(samples) < MAX_SAMPLES:
                samples.append({"customer": customer_id, "msgid": row[6], "content": row[4][:500],
                                "keyword": match.keywords[0], "sent_at": row[5].isoformat(),
                                "spans": matcher.spans(row[4][:500], match.keywords)})
    if matched_customers:
        BacktestCustomer.objects.bulk_create(
            [BacktestCustomer(backtest=backtest, customer_id=c) for c in matched_customers],
            batch_size=5000, ignore_conflicts=True,
        )
    merged = dict(backtest.keywords)
    for keyword, n in keywords.items():
        merged[keyword] = merged.get(keyword, 0) + n
    backtest.keywords = merged
    backtest.samples = samples
    backtest.save(update_fields=["keywords", "samples"])
    return {"customers": len(matched_customers), "messages": matched_messages,
            "excluded_messages": excluded_messages, "excluded_customers": excluded_customers, "already": already}


def _rule_events(rule_id: int) -> Q:
    return Q(source=TagSource.RULE, actor_label__startswith=rule_label_prefix(rule_id))


def _rule_actor(rule_id: int) -> Actor:
    rule = KeywordRule.objects.filter(pk=rule_id).first()
    return Actor(label=rule.actor_label if rule else f"{rule_label_prefix(rule_id)}".strip())


@job_handler(JobKind.RULE_UNDO)
class RuleUndoJob(JobHandler):
    """Removes the tags a rule added (to the customers it tagged since `params["since"]`), customer by
    customer (keyset on the customer id). For each (customer, tag) the rule added, the tag is removed
    only if the customer still holds it and nobody else added that tag to that customer after the
    rule did — the same guarantee as a bulk job's undo. Removals go through the tagging service
    (audited with this job, source `rule`); the rule still never re-tags those customers (once only).
    Skipped pairs are counted as `kept`."""

    chunk_size = 1000
    max_chunk_size = 10_000

    def _tagged(self, job: Job):
        qs = RuleTagged.objects.filter(rule_id=job.params["rule"])
        if job.params.get("since"):
            start, _end = _day_bounds(job.params["since"], job.params["since"])
            qs = qs.filter(tagged_at__gte=start)
        return qs

    def prepare(self, job: Job) -> int | None:
        return self._tagged(job).count()

    def run_chunk(self, job: Job, cursor, size: int) -> Chunk | None:
        rule_id = job.params["rule"]
        after = int(cursor or 0)
        customer_ids = list(self._tagged(job).filter(customer_id__gt=after).order_by("customer_id")
                            .values_list("customer_id", flat=True)[:size])
        if not customer_ids:
            return None
        events = TagEvent.objects.filter(_rule_events(rule_id), customer_id__in=customer_ids, tag_id__isnull=False,
                                         action=TagAction.ADD)
        if job.params.get("since"):
            start, _end = _day_bounds(job.params["since"], job.params["since"])
            events = events.filter(created_at__gte=start)
        last: dict[tuple[int, int], int] = {}
        for pk, customer_id, tag_id in events.order_by("pk").values_list("pk", "customer_id", "tag_id"):
            last[(customer_id, tag_id)] = pk
        if not last:
            return Chunk(done=len(customer_ids), cursor=customer_ids[-1], counts={"removed": 0, "kept": 0})
        since_pk = min(last.values())
        later_add: dict[tuple[int, int], int] = {}  # the last add by someone else, per pair
        for pk, customer_id, tag_id in (
            TagEvent.objects.filter(customer_id__in=customer_ids, tag_id__in={t for _c, t in last}, pk__gt=since_pk,
                                    action=TagAction.ADD)
            .exclude(_rule_events(rule_id)).exclude(job_id=job.pk).values_list("pk", "customer_id", "tag_id")
        ):
            later_add[(customer_id, tag_id)] = max(pk, later_add.get((customer_id, tag_id), 0))
        current = set(Tagging.objects.filter(customer_id__in=customer_ids, tag_id__in={t for _c, t in last})
                      .values_list("customer_id", "tag_id"))
        removes: dict[int, set[int]] = defaultdict(set)
        kept = 0
        for (customer_id, tag_id), pk in last.items():
            if (customer_id, tag_id) not in current:
                continue
            if later_add.get((customer_id, tag_id), 0) > pk:
                kept += 1
                continue
            removes[customer_id].add(tag_id)
        operations = [TagOperation(customer_id=c, remove=tuple(sorted(t))) for c, t in sorted(removes.items())]
        # The rule took the tags off as automation, so it takes them back the same way: the tag admin who
        # asked may not see the rule's tag (a scoped group), and is recorded as the job's actor.
        result, failed = _apply_operations(job, _rule_actor(rule_id), operations, TagSource.RULE)
        return Chunk(done=len(customer_ids), cursor=customer_ids[-1], failed=failed,
                     counts={"removed": result.removed, "kept": kept})
