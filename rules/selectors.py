"""Reads of the rules app: rule figures, the hit log, hits per day, and the 试一试 matcher."""

from __future__ import annotations

import datetime as dt

from django.db.models import Count, Q, QuerySet
from django.db.models.functions import TruncDate
from django.utils import timezone
from django.utils.translation import gettext as _

from org.actors import Actor

from .matcher import Matcher, RuleSpec, active_matcher
from .models import HitOutcome, KeywordRule, RuleHit, RuleStatus


def visible_rules(actor: Actor) -> QuerySet[KeywordRule]:
    """The keyword rules `actor` may see and manage (tag admins, enterprise admins, enterprise level)."""
    return KeywordRule.objects.restrict(actor, "view")


def rule_hits(rule: KeywordRule, *, outcome: str | None = None) -> QuerySet[RuleHit]:
    qs = RuleHit.objects.filter(rule=rule)
    if outcome:
        qs = qs.filter(outcome=outcome)
    return qs


def rule_figures(rule: KeywordRule) -> dict:
    """The rule page's summary: hits per outcome, customers tagged, and for a testing rule "would have
    tagged N customers; M sample customers tagged"."""
    by_outcome = dict(RuleHit.objects.filter(rule=rule).order_by().values_list("outcome").annotate(n=Count("id")))
    shadow_customers = (RuleHit.objects.filter(rule=rule, outcome=HitOutcome.SHADOW).order_by()
                        .values("customer_id").distinct().count())
    sample_ids = list(rule.sample_customers.values_list("pk", flat=True))
    samples_tagged = rule.tagged.filter(customer_id__in=sample_ids).count() if sample_ids else 0
    return {
        "hits": sum(by_outcome.values()),
        "by_outcome": {o: by_outcome.get(o, 0) for o in HitOutcome.values},
        "tagged_customers": rule.tagged.count(),
        "shadow_customers": shadow_customers,
        "sample_customers_tagged": samples_tagged,
    }


def reason_display(reason: str) -> str:
    """`keyword:不需要` → 含排除词“不需要”; `tag:已成交` → 客户有排除标签“已成交”."""
    kind, _sep, value = reason.partition(":")
    if kind == "keyword":
        return _("含排除词“%(w)s”") % {"w": value}
    if kind == "tag":
        return _("客户有排除标签“%(w)s”") % {"w": value}
    return reason


def hits_per_day(rule: KeywordRule, *, days: int = 30) -> list[dict]:
    """Hits per day (by message time, Asia/Shanghai) over the last `days` days, per outcome."""
    today = timezone.localdate()
    start_day = today - dt.timedelta(days=days - 1)
    start = timezone.make_aware(dt.datetime.combine(start_day, dt.time.min))
    rows = (RuleHit.objects.filter(rule=rule, sent_at__gte=start).order_by()
            .annotate(day=TruncDate("sent_at", tzinfo=timezone.get_current_timezone()))
            .values("day").annotate(total=Count("id"), tagged=Count("id", filter=Q(outcome=HitOutcome.TAGGED)),
                                    shadow=Count("id", filter=Q(outcome=HitOutcome.SHADOW)),
                                    excluded=Count("id", filter=Q(outcome=HitOutcome.EXCLUDED))))
    by_day = {r["day"]: r for r in rows}
    out = []
    for offset in range(days):
        day = start_day + dt.timedelta(days=offset)
        r = by_day.get(day, {})
        out.append({"date": day.isoformat(), "hits": r.get("total", 0), "tagged": r.get("tagged", 0),
                    "shadow": r.get("shadow", 0), "excluded": r.get("excluded", 0)})
    return out


def keyword_test(*, content: str, draft: RuleSpec | None = None, rules: QuerySet | None = None,
                 editing: int | None = None) -> list[dict]:
    """试一试: which live and testing rules (and `draft`, an unsaved rule) match `content`, with the
    keywords and exclude keywords found, using the workers' matcher. Nothing is stored.
    `editing`: the saved rule the draft is an edit of; the draft stands in for it (listed once, with
    the saved rule's id and status), so the editor shows what the rule will match once saved."""
    found = []
    matcher = active_matcher()
    matches = matcher.match(content)
    names = {}
    if matches:
        names = dict(KeywordRule.objects.filter(pk__in=list(matches)).values_list("pk", "name"))
    for rule_id, match in sorted(matches.items()):
        if not match.keywords or (draft is not None and rule_id == editing):
            continue
        spec = matcher.rules[rule_id]
        found.append({"rule": rule_id, "name": names.get(rule_id, spec.name), "status": spec.status, "draft": False,
                      "keywords": match.keywords, "excluded_by": match.excluded_by,
                      "spans": matcher.spans(content, match.keywords)})
    if draft is not None:
        one = Matcher([draft])
        match = one.match(content).get(draft.id)
        saved = KeywordRule.objects.filter(pk=editing).values("pk", "status").first() if editing else None
        found.insert(0, {"rule": saved["pk"] if saved else None, "name": draft.name,
                         "status": saved["status"] if saved else RuleStatus.DRAFT, "draft": True,
                         "keywords": match.keywords if match else [],
                         "excluded_by": match.excluded_by if match else [],
                         "spans": one.spans(content, match.keywords) if match else []})
    return found
