"""The channel codes' panels on the 数据看板 (insights' registry): customers added per code per day,
and how many of them stay after 7 and 30 days. Registered from `ChannelsConfig.ready()`.

Scope: the codes the viewer sees (`codes_for`), and of their adds only customers the viewer sees
(`visible_customers`), as everywhere on the dashboard.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from django.db.models import Count
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from customers.selectors import visible_customers, visible_follower_ids
from insights.registry import Panel, PanelData, PanelQuery, Series, customer_list_url, register_panel
from org.actors import Actor

from .models import ChannelAdd
from .selectors import ENDED, SHANGHAI, codes_for

TOP_CODES = 8
CHANNEL_ROLES = ("enterprise_admin", "tag_admin", "manager", "staff")


def _adds(q: PanelQuery):
    """The adds through codes the viewer sees, of customers they see (department: the receiver's)."""
    codes = codes_for(Actor(employee=q.viewer)) if q.viewer is not None else None
    adds = ChannelAdd.objects.all()
    if codes is not None:
        adds = adds.filter(code__in=codes)
    if visible_follower_ids(q.viewer) is not None:
        adds = adds.filter(customer_id__in=visible_customers(q.viewer).values("pk"))
    if q.department is not None:
        adds = adds.filter(employee__departments=q.department)
    return adds


def channel_adds_daily(q: PanelQuery) -> PanelData:
    """渠道活码每日新增: customers added through each code per day (the busiest codes, the rest as
    其他). A point links to the customers still followed through that code, added that day."""
    rows = list(
        _adds(q).filter(day__gte=q.date_from, day__lte=q.date_to)
        .values("code_id", "code__name", "code__state", "day").annotate(n=Count("id")).order_by()
    )
    per_code: dict[int, dict[dt.date, int]] = defaultdict(dict)
    names: dict[int, tuple[str, str]] = {}
    for r in rows:
        per_code[r["code_id"]][r["day"]] = r["n"]
        names[r["code_id"]] = (r["code__name"], r["code__state"])
    ranked = sorted(per_code, key=lambda c: (-sum(per_code[c].values()), names[c][0]))
    series = []
    for code_id in ranked[:TOP_CODES]:
        name, state = names[code_id]
        links = [customer_list_url(**q.list_params(state=state, added_from=d.isoformat(), added_to=d.isoformat()))
                 for d in q.days]
        series.append(Series(state, name, [per_code[code_id].get(d, 0) for d in q.days], links))
    rest = ranked[TOP_CODES:]
    if rest:
        series.append(Series("other", str(_("其他")), [sum(per_code[c].get(d, 0) for c in rest) for d in q.days]))
    return PanelData(categories=[f"{d.month}/{d.day}" for d in q.days], category_keys=q.days, series=series,
                     summary={"added": sum(sum(s.data) for s in series)})


def _ended(row: dict) -> dt.datetime | None:
    if row["ended_at"] is not None:
        return row["ended_at"]
    if row["relation__status"] in ENDED:
        return row["relation__ended_at"] or row["relation__added_at"]
    return None


def channel_retention(q: PanelQuery) -> PanelData:
    """渠道留存: of the customers each code brought in the date range, the share still followed 7 and 30
    days after they added (counted among adds at least that old). Links: the code's customers added
    in the date range (the bars' own customers)."""
    now = timezone.now()
    rows = list(
        _adds(q).filter(day__gte=q.date_from, day__lte=q.date_to)
        .values("code_id", "code__name", "code__state", "added_at", "ended_at", "relation__status",
                "relation__ended_at", "relation__added_at")
    )
    stats: dict[int, dict] = {}
    for r in rows:
        s = stats.setdefault(r["code_id"], {"name": r["code__name"], "state": r["code__state"], "added": 0,
                                            7: [0, 0], 30: [0, 0]})
        s["added"] += 1
        ended = _ended(r)
        for days in (7, 30):
            mark = r["added_at"] + dt.timedelta(days=days)
            if mark <= now:  # old enough to tell
                s[days][0] += 1
                if ended is None or ended > mark:
                    s[days][1] += 1
    ranked = sorted(stats.values(), key=lambda s: (-s["added"], s["name"]))[:15]

    def share(s, days):
        old, kept = s[days]
        return round(100.0 * kept / old, 1) if old else None

    links = [customer_list_url(**q.list_params(state=s["state"], added_from=q.date_from.isoformat(),
                                               added_to=q.date_to.isoformat())) for s in ranked]
    return PanelData(
        categories=[s["name"] for s in ranked], category_keys=[s["state"] for s in ranked],
        series=[
            Series("kept_7", str(_("7 天留存率（%）")), [share(s, 7) for s in ranked], links),
            Series("kept_30", str(_("30 天留存率（%）")), [share(s, 30) for s in ranked], links),
            Series("added", str(_("新增客户")), [s["added"] for s in ranked], links, chart=False),
            Series("old_7", str(_("满 7 天的新增")), [s[7][0] for s in ranked], chart=False),
            Series("old_30", str(_("满 30 天的新增")), [s[30][0] for s in ranked], chart=False),
        ],
        summary={"added": sum(s["added"] for s in stats.values()), "timezone": str(SHANGHAI)},
    )


def register_panels() -> None:
    register_panel(Panel(
        key="channel_adds_daily", title=_("渠道活码每日新增"), section="channels", order=10, wide=True,
        description=_("每天通过各渠道活码添加的客户（最多的 8 个活码，其余合为“其他”）。点击查看仍在跟进的这些客户。"),
        selector=channel_adds_daily, chart={"kind": "stacked_bar"}, roles=CHANNEL_ROLES,
    ))
    register_panel(Panel(
        key="channel_retention", title=_("渠道活码留存（7 天 / 30 天）"), section="channels", order=20,
        description=_("所选日期内各活码带来的客户，添加 7 天和 30 天后仍在跟进的比例。"),
        selector=channel_retention, chart={"kind": "hbar", "percent": True}, roles=CHANNEL_ROLES,
    ))
