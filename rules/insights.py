"""The keyword rules' panels on the 数据看板 (insights' registry), for tag admins and enterprise admins:
hits per day by outcome, and customers tagged per rule. Registered from `RulesConfig.ready()`."""

from __future__ import annotations

import datetime as dt

from django.db.models import Count, Q
from django.db.models.functions import TruncDate
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from customers.models import FollowRelation, RelationStatus
from insights.registry import Panel, PanelData, PanelQuery, Series, customer_list_url, register_panel

from .models import HitOutcome, KeywordRule, RuleHit, RuleTagged

RULE_ROLES = ("enterprise_admin", "tag_admin")


def _bounds(q: PanelQuery) -> tuple[dt.datetime, dt.datetime]:
    start = timezone.make_aware(dt.datetime.combine(q.date_from, dt.time.min))
    end = timezone.make_aware(dt.datetime.combine(q.date_to + dt.timedelta(days=1), dt.time.min))
    return start, end


def _in_department(qs, q: PanelQuery):
    """Customers followed by members of exactly the query's department (as the customer list's filter)."""
    if q.department is None:
        return qs
    followed = FollowRelation.objects.filter(status=RelationStatus.ACTIVE, employee__departments=q.department)
    return qs.filter(customer_id__in=followed.values("customer_id"))


def rule_hits_daily(q: PanelQuery) -> PanelData:
    """智能标签每日命中: hits per day (by message time) and outcome, every rule together. The tagged
    points link to the customers whose tags rules changed that day."""
    start, end = _bounds(q)
    rows = (_in_department(RuleHit.objects.filter(sent_at__gte=start, sent_at__lt=end), q).order_by()
            .annotate(day=TruncDate("sent_at", tzinfo=timezone.get_current_timezone()))
            .values("day", "outcome").annotate(n=Count("id")))
    grid: dict[str, dict[dt.date, int]] = {}
    for r in rows:
        grid.setdefault(r["outcome"], {})[r["day"]] = r["n"]
    series = []
    for outcome in (HitOutcome.TAGGED, HitOutcome.SHADOW, HitOutcome.EXCLUDED, HitOutcome.ALREADY,
                    HitOutcome.COUNTED):
        links = None
        if outcome == HitOutcome.TAGGED:
            links = [customer_list_url(**q.list_params(activity="tags", activity_source="rule",
                                                       activity_from=d.isoformat(), activity_to=d.isoformat()))
                     for d in q.days]
        series.append(Series(outcome.value, str(outcome.label), [grid.get(outcome, {}).get(d, 0) for d in q.days],
                             links))
    return PanelData(categories=[f"{d.month}/{d.day}" for d in q.days], category_keys=q.days, series=series,
                     summary={"hits": sum(sum(s.data) for s in series)})


def rule_tagged_by_rule(q: PanelQuery) -> PanelData:
    """Customers each rule tagged in the date range (top 15), beside its hits there."""
    start, end = _bounds(q)
    tagged = dict(_in_department(RuleTagged.objects.filter(tagged_at__gte=start, tagged_at__lt=end), q)
                  .order_by().values_list("rule_id").annotate(n=Count("id")))
    hits = dict(_in_department(RuleHit.objects.filter(sent_at__gte=start, sent_at__lt=end), q)
                .order_by().values_list("rule_id").annotate(n=Count("id", filter=~Q(outcome=HitOutcome.COUNTED))))
    names = dict(KeywordRule.objects.filter(pk__in=set(tagged) | set(hits)).values_list("pk", "name"))
    top = sorted(names, key=lambda r: (-tagged.get(r, 0), -hits.get(r, 0), r))[:15]
    # a bar opens the customers whose tags rules changed in the range (the list has no per-rule filter)
    link = customer_list_url(**q.list_params(activity="tags", activity_source="rule",
                                             activity_from=q.date_from.isoformat(), activity_to=q.date_to.isoformat()))
    links = [link] * len(top)
    return PanelData(
        categories=[names[r] for r in top], category_keys=top,
        series=[Series("tagged", str(_("打上标签的客户")), [tagged.get(r, 0) for r in top], links),
                Series("hits", str(_("命中")), [hits.get(r, 0) for r in top], links)],
        summary={"tagged": sum(tagged.values())},
    )


def register_panels() -> None:
    register_panel(Panel(
        key="rule_hits_daily", title=_("智能标签每日命中"), section="rules", order=10, wide=True,
        description=_("关键词规则每天命中的消息，按结果分：已打标签、测试（未打）、已排除、已有标签、计数中。"),
        selector=rule_hits_daily, chart={"kind": "stacked_bar"}, roles=RULE_ROLES,
    ))
    register_panel(Panel(
        key="rule_tagged_by_rule", title=_("各智能标签打上标签的客户"), section="rules", order=20,
        description=_("所选日期内每条规则打上标签的客户数和命中次数（前 15 条）。"),
        selector=rule_tagged_by_rule, chart={"kind": "hbar"}, roles=RULE_ROLES,
    ))
