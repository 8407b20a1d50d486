"""Reads of the 数据看板: the query's parameters, the viewer's cohorts, and each built-in panel's data.

Visibility is the customer list's, exactly: customers through `customers.selectors`
(`visible_follower_ids` is `visible_customers`' own rule, used to pick the cohorts a viewer sees),
tags through `tags.selectors.visible_tags`. Every number links to the customer list filtered to
the customers behind it; where the panel counts customers, the list shows the same number.

Every built-in panel reads the aggregates refreshed by `insights.refresh_aggregates` (they carry
`as_of`, shown as "数据截至"): counting exactly on the live tables took seconds at 1M customers
(bench/insights.py prints both). The aggregates keep what the exact count needs — each customer's
cohort (the set of its active followers, which decides who sees it) and, for new and lost customers,
the relations themselves — so the figures equal the customer list's as of that time.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections import defaultdict
from collections.abc import Mapping

from django.db.models import Count, Q, Sum
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.dateparse import parse_date
from django.utils.translation import gettext as _

from customers.models import TagSource
from customers.selectors import local_settings, visible_follower_ids
from org.models import Department, Employee, Role
from tagportal.errors import ValidationFailed
from tagportal.text import aside
from tags.models import Tag, TagGroup
from tags.selectors import visible_tag_groups, visible_tags

from .models import (
    Cohort,
    CohortGroupCount,
    CohortMember,
    CohortTagCount,
    DailyFollowup,
    DailyRelation,
    DailyTagActivity,
    Snapshot,
)
from .registry import PanelData, PanelQuery, Series, customer_list_url
from .services import HORIZON_DAYS

DEFAULT_DAYS = 30
MAX_DAYS = 366
UNUSED_DAYS = 90
TOP_TAGS = 20
TOP_EMPLOYEES = 15
MAX_PG_INT = 2**31 - 1


# ---------------------------------------------------------------- parameters


def _parse_day(key: str, raw: str | None, errors: dict) -> dt.date | None:
    if raw is None or not str(raw).strip():
        return None
    try:
        day = parse_date(str(raw).strip())
    except ValueError:
        day = None
    if day is None:
        errors[key] = _("日期格式应为 YYYY-MM-DD：%(value)s") % {"value": raw}
    return day


def parse_panel_query(params: Mapping[str, str], *, viewer: Employee | None) -> PanelQuery:
    """`from`, `to` (YYYY-MM-DD, local days, both included; default the last 30 days) and
    `department` (an id). Bad values raise `ValidationFailed` naming each field."""
    errors: dict[str, str] = {}
    today = timezone.localdate()
    date_from = _parse_day("from", params.get("from"), errors)
    date_to = _parse_day("to", params.get("to"), errors)
    department = None
    raw = params.get("department")
    if raw is not None and str(raw).strip():
        raw = str(raw).strip()
        if not raw.isdigit() or not 0 < int(raw) <= MAX_PG_INT:
            errors["department"] = _("部门 id 无效：%(value)s") % {"value": raw}
        else:
            department = Department.objects.filter(pk=int(raw)).first()
            if department is None:
                errors["department"] = _("部门不存在：%(value)s") % {"value": raw}
    if not errors:
        date_to = date_to or today
        date_from = date_from or (date_to - dt.timedelta(days=DEFAULT_DAYS - 1))
        if date_from > date_to:
            errors["from"] = _("开始日期不能晚于结束日期")
        elif date_from < today - dt.timedelta(days=HORIZON_DAYS - 1):
            errors["from"] = _("最早可查 %(day)s") % {"day": (today - dt.timedelta(days=HORIZON_DAYS - 1)).isoformat()}
        elif (date_to - date_from).days + 1 > MAX_DAYS:
            errors["to"] = _("日期范围最多 %(n)s 天") % {"n": MAX_DAYS}
        elif date_to > today + dt.timedelta(days=1):
            errors["to"] = _("结束日期不能晚于今天")
    if errors:
        first = next(iter(errors))
        raise ValidationFailed(_("参数无效：%(key)s") % {"key": first}, details=errors)
    return PanelQuery(viewer=viewer, date_from=date_from, date_to=date_to, department=department)


def department_choices(viewer: Employee | None) -> list[tuple[int, str]]:
    """Departments offered in the picker: all for who sees every customer, a manager's own list."""
    qs = Department.objects.order_by("tree_id", "lft")
    if viewer is not None and visible_follower_ids(viewer) is not None:
        if not viewer.has_role(Role.MANAGER):
            return []
        qs = qs.filter(pk__in=viewer.managed_departments.values("pk"))
    return [(pk, "　" * level + name) for pk, name, level in qs.values_list("pk", "name", "level")]


# ---------------------------------------------------------------- cohorts (aggregated panels)


def latest_snapshot() -> Snapshot | None:
    return Snapshot.objects.order_by("-refreshed_at", "-pk").first()


def _department_members(department: Department):
    return Employee.departments.through.objects.filter(department_id=department.pk).values("employee_id")


def cohort_condition(q: PanelQuery, field: str = "cohort_id", *, department: bool = True) -> Q | None:
    """The cohorts `q.viewer` sees and, with a department (unless `department=False`), those with a
    member of exactly that department: as a condition on `field` (None: every cohort)."""
    condition = Q()
    followers = visible_follower_ids(q.viewer)
    if followers is not None:
        members = CohortMember.objects.filter(employee_id__in=followers)
        condition &= Q(**{f"{field}__in": members.values("cohort_id")})
    if department and q.department is not None:
        members = CohortMember.objects.filter(employee_id__in=_department_members(q.department))
        condition &= Q(**{f"{field}__in": members.values("cohort_id")})
    return condition or None


def _cohorts(model, q: PanelQuery):
    condition = cohort_condition(q)
    qs = model.objects.all()
    return qs.filter(condition) if condition is not None else qs


def customers_total(q: PanelQuery) -> tuple[int, int]:
    """(customers, untagged) the viewer sees with the department filter, from the latest aggregates."""
    condition = cohort_condition(q, "pk")
    qs = Cohort.objects.filter(condition) if condition is not None else Cohort.objects.all()
    totals = qs.aggregate(customers=Sum("customers"), untagged=Sum("untagged"))
    return int(totals["customers"] or 0), int(totals["untagged"] or 0)


def _visible_tag_ids(viewer: Employee | None) -> list[int]:
    return list(visible_tags(viewer).values_list("pk", flat=True))


def _group_label(group: TagGroup, names: dict[int, tuple[str, int | None]]) -> str:
    parts, node = [], group.pk
    while node is not None and node in names:
        name, parent = names[node]
        parts.append(name)
        node = parent
    return " / ".join(reversed(parts))


# ---------------------------------------------------------------- tag panels (aggregated)


def tag_coverage(q: PanelQuery) -> PanelData:
    """Per visible tag group with tags: the share of the viewer's customers carrying at least one of
    its own tags. Links: the list filtered to "has any of the group's tags"."""
    snapshot = latest_snapshot()
    total, _untagged = customers_total(q)
    groups = list(visible_tag_groups(q.viewer).order_by("tree_id", "lft"))
    names = {g.pk: (g.name, g.parent_id) for g in groups}
    tags_of: dict[int, list[int]] = defaultdict(list)
    for tag_id, group_id in Tag.objects.filter(group__in=[g.pk for g in groups]).order_by("order", "pk").values_list(
        "pk", "group_id"
    ):
        tags_of[group_id].append(tag_id)
    counts = dict(
        _cohorts(CohortGroupCount, q).values_list("group_id").annotate(n=Sum("customers")).values_list("group_id", "n")
    )
    groups = [g for g in groups if tags_of.get(g.pk)]
    categories = [_group_label(g, names) for g in groups]
    covered = [int(counts.get(g.pk, 0) or 0) for g in groups]
    share = [round(100.0 * n / total, 1) if total else 0.0 for n in covered]
    links = [customer_list_url(**q.list_params(tags_any=",".join(map(str, tags_of[g.pk])))) for g in groups]
    return PanelData(
        categories=categories,
        category_keys=[g.pk for g in groups],
        series=[
            Series("share", _("覆盖率（%）"), share, links),
            Series("customers", _("有该组标签的客户"), covered, links, chart=False),
        ],
        summary={"customers": total},
        as_of=snapshot.refreshed_at if snapshot else None,
    )


def untagged_customers(q: PanelQuery) -> PanelData:
    """Customers with no enterprise tag at all, beside those with one; links `untagged=1` / `0`."""
    snapshot = latest_snapshot()
    total, untagged = customers_total(q)
    links = [customer_list_url(**q.list_params(untagged=0)), customer_list_url(**q.list_params(untagged=1))]
    return PanelData(
        categories=[_("有企业标签"), _("无任何企业标签")],
        category_keys=["tagged", "untagged"],
        series=[Series("customers", _("客户数"), [total - untagged, untagged], links)],
        summary={"customers": total, "untagged": untagged,
                 "untagged_share": round(100.0 * untagged / total, 1) if total else 0.0,
                 "untagged_url": links[1]},
        as_of=snapshot.refreshed_at if snapshot else None,
    )


def top_tags(q: PanelQuery) -> PanelData:
    """The visible tags carried by the most of the viewer's customers; links `tags_all=<tag>`."""
    snapshot = latest_snapshot()
    visible = _visible_tag_ids(q.viewer)
    rows = list(
        _cohorts(CohortTagCount, q).filter(tag_id__in=visible).values("tag_id").annotate(n=Sum("customers"))
        .order_by("-n", "tag_id")[:TOP_TAGS]
    )
    tags = Tag.objects.select_related("group").in_bulk([r["tag_id"] for r in rows])
    rows = [r for r in rows if r["tag_id"] in tags]
    return PanelData(
        categories=[f"{tags[r['tag_id']].name}{aside(tags[r['tag_id']].group.name)}" for r in rows],
        category_keys=[r["tag_id"] for r in rows],
        series=[Series("customers", _("客户数"), [int(r["n"]) for r in rows],
                       [customer_list_url(**q.list_params(tags_all=r["tag_id"])) for r in rows])],
        as_of=snapshot.refreshed_at if snapshot else None,
    )


def unused_tags(q: PanelQuery) -> PanelData:
    """Visible tags nobody added to any of the viewer's customers in the last 90 days (clean-up
    candidates), with how many customers still carry them; linked to the taxonomy health page."""
    snapshot = latest_snapshot()
    today = timezone.localdate()
    visible = _visible_tag_ids(q.viewer)
    used = set(
        _cohorts(DailyTagActivity, q).filter(
            day__gte=today - dt.timedelta(days=UNUSED_DAYS - 1), action="add", tag_id__in=visible
        ).values_list("tag_id", flat=True).distinct()
    )
    unused = [t for t in visible if t not in used]
    carried = dict(
        _cohorts(CohortTagCount, q).filter(tag_id__in=unused).values("tag_id").annotate(n=Sum("customers"))
        .values_list("tag_id", "n")
    )
    tags = Tag.objects.select_related("group").in_bulk(unused)
    ordered = sorted(unused, key=lambda t: (-(carried.get(t) or 0), tags[t].group.name, tags[t].name))
    links = {}
    viewer = q.viewer
    if viewer is None or viewer.has_role(Role.ENTERPRISE_ADMIN, Role.TAG_ADMIN):
        with contextlib.suppress(NoReverseMatch):  # the tags admin is always there; be safe anyway
            links[_("标签体系体检")] = reverse("admin:tags_taggroup_health")
    return PanelData(
        categories=[f"{tags[t].name}{aside(tags[t].group.name)}" for t in ordered],
        category_keys=ordered,
        series=[Series("customers", _("仍带此标签的客户"), [int(carried.get(t) or 0) for t in ordered],
                       [customer_list_url(**q.list_params(tags_all=t)) for t in ordered])],
        summary={"unused": len(ordered), "visible_tags": len(visible), "days": UNUSED_DAYS},
        as_of=snapshot.refreshed_at if snapshot else None,
        links=links,
    )


# ---------------------------------------------------------------- activity (aggregated)


def _day_labels(q: PanelQuery) -> list[str]:
    return [f"{d.month}/{d.day}" for d in q.days]


def tagging_activity(q: PanelQuery) -> PanelData:
    """Changes of visible enterprise tags per day and source (the audit), on the viewer's customers.
    A point links to the customers whose tags that source changed that day."""
    snapshot = latest_snapshot()
    visible = _visible_tag_ids(q.viewer)
    rows = (
        _cohorts(DailyTagActivity, q)
        .filter(day__gte=q.date_from, day__lte=q.date_to, tag_id__in=visible)
        .values("day", "source").annotate(n=Sum("events"))
    )
    grid: dict[str, dict[dt.date, int]] = defaultdict(dict)
    for r in rows:
        grid[r["source"]][r["day"]] = int(r["n"])
    series = []
    for source in TagSource:
        data = [grid[source.value].get(d, 0) for d in q.days]
        links = [
            customer_list_url(**q.list_params(activity="tags", activity_from=d.isoformat(),
                                              activity_to=d.isoformat(), activity_source=source.value))
            for d in q.days
        ]
        series.append(Series(source.value, str(source.label), data, links))
    return PanelData(
        categories=_day_labels(q), category_keys=q.days, series=series,
        summary={"changes": sum(sum(s.data) for s in series)},
        as_of=snapshot.refreshed_at if snapshot else None,
    )


def followups(q: PanelQuery) -> PanelData:
    """Notes (跟进记录) and chat messages (聊天记录) per day on the viewer's customers."""
    snapshot = latest_snapshot()
    rows = (
        _cohorts(DailyFollowup, q).filter(day__gte=q.date_from, day__lte=q.date_to)
        .values("day", "kind").annotate(n=Sum("events"))
    )
    grid: dict[str, dict[dt.date, int]] = defaultdict(dict)
    for r in rows:
        grid[r["kind"]][r["day"]] = int(r["n"])
    series = []
    for kind, label in DailyFollowup.KINDS:
        links = [customer_list_url(**q.list_params(activity=kind, activity_from=d.isoformat(),
                                                   activity_to=d.isoformat())) for d in q.days]
        series.append(Series(kind, str(label), [grid[kind].get(d, 0) for d in q.days], links))
    return PanelData(categories=_day_labels(q), category_keys=q.days, series=series,
                     as_of=snapshot.refreshed_at if snapshot else None)


# ---------------------------------------------------------------- customers (aggregated relations)


def _relations(q: PanelQuery, *, lost: bool):
    """Follow relations added (still active) or ended (lost/deleted) within the days of `q`, of
    customers the viewer sees, with the department on the same relation: exactly the customer list's
    `added_from/added_to` (or `lost_from/lost_to`) with `department`, as of the aggregates."""
    rows = DailyRelation.objects.filter(kind="lost" if lost else "new", day__gte=q.date_from, day__lte=q.date_to)
    condition = cohort_condition(q, department=False)
    if condition is not None:
        rows = rows.filter(condition)
    if q.department is not None:
        rows = rows.filter(employee_id__in=_department_members(q.department))
    return rows


def _per_day(q: PanelQuery, *, lost: bool) -> dict[dt.date, int]:
    rows = _relations(q, lost=lost).values("day").annotate(n=Count("customer_id", distinct=True)).order_by()
    with local_settings(jit="off"):
        return {r["day"]: r["n"] for r in rows}


def customers_daily(q: PanelQuery) -> PanelData:
    """New customers per day (a follow relation added that day, still active) and lost ones (a
    relation ended that day: the customer removed the employee, or the employee the customer)."""
    snapshot = latest_snapshot()
    new, lost = _per_day(q, lost=False), _per_day(q, lost=True)
    days = q.days
    return PanelData(
        as_of=snapshot.refreshed_at if snapshot else None,
        categories=_day_labels(q), category_keys=days,
        series=[
            Series("new", _("新增客户"), [new.get(d, 0) for d in days],
                   [customer_list_url(**q.list_params(added_from=d.isoformat(), added_to=d.isoformat()))
                    for d in days]),
            Series("lost", _("流失客户"), [lost.get(d, 0) for d in days],
                   [customer_list_url(**q.list_params(lost_from=d.isoformat(), lost_to=d.isoformat()))
                    for d in days]),
        ],
        summary={"new": sum(new.values()), "lost": sum(lost.values())},
    )


def _per(q: PanelQuery, key: str, *, lost: bool) -> dict:
    """Customers per department or employee of the relation. A manager's bars are their team's (the
    employees whose relations make customers visible to them): a customer they see may also be
    followed by someone of another department, whose bar is not theirs to compare."""
    relations = _relations(q, lost=lost)
    followers = visible_follower_ids(q.viewer)
    if followers is not None:
        relations = relations.filter(employee_id__in=followers)
    rows = relations.values(key).annotate(n=Count("customer_id", distinct=True)).order_by()
    with local_settings(jit="off"):
        return {r[key]: r["n"] for r in rows if r[key] is not None}


def _department_paths() -> dict[int, str]:
    """"北京分公司 / 销售部": each department's path below the root (sibling names repeat)."""
    rows = {pk: (name, parent) for pk, name, parent in Department.objects.values_list("pk", "name", "parent_id")}
    paths = {}
    for pk in rows:
        parts, node = [], pk
        while node is not None and node in rows:
            name, parent = rows[node]
            if parent is not None or node == pk:  # the company itself (the root) is left out
                parts.append(name)
            node = parent
        paths[pk] = " / ".join(reversed(parts))
    return paths


def customers_by_department(q: PanelQuery) -> PanelData:
    """New and lost customers in the date range per department of the employee concerned."""
    new = _per(q, "employee__departments", lost=False)
    lost = _per(q, "employee__departments", lost=True)
    ids = sorted(set(new) | set(lost), key=lambda d: (-(new.get(d, 0)), -(lost.get(d, 0)), d))
    depts = Department.objects.in_bulk(ids)
    ids = [d for d in ids if d in depts]
    paths = _department_paths()
    snapshot = latest_snapshot()
    span = {"from": q.date_from.isoformat(), "to": q.date_to.isoformat()}
    return PanelData(
        categories=[paths.get(d, depts[d].name) for d in ids], category_keys=ids,
        as_of=snapshot.refreshed_at if snapshot else None,
        series=[
            Series("new", _("新增客户"), [new.get(d, 0) for d in ids],
                   [customer_list_url(department=d, added_from=span["from"], added_to=span["to"]) for d in ids]),
            Series("lost", _("流失客户"), [lost.get(d, 0) for d in ids],
                   [customer_list_url(department=d, lost_from=span["from"], lost_to=span["to"]) for d in ids]),
        ],
    )


def customers_by_employee(q: PanelQuery) -> PanelData:
    """The employees with the most new customers in the range (and their lost ones)."""
    new = _per(q, "employee_id", lost=False)
    lost = _per(q, "employee_id", lost=True)
    ids = sorted(set(new) | set(lost), key=lambda e: (-(new.get(e, 0)), -(lost.get(e, 0)), e))[:TOP_EMPLOYEES]
    people = Employee.objects.in_bulk(ids)
    ids = [e for e in ids if e in people]
    snapshot = latest_snapshot()
    span = {"from": q.date_from.isoformat(), "to": q.date_to.isoformat()}
    return PanelData(
        categories=[people[e].name or people[e].userid for e in ids],
        category_keys=[people[e].userid for e in ids],
        as_of=snapshot.refreshed_at if snapshot else None,
        series=[
            Series("new", _("新增客户"), [new.get(e, 0) for e in ids],
                   [customer_list_url(**q.list_params(follower=people[e].userid, added_from=span["from"],
                                                      added_to=span["to"])) for e in ids]),
            Series("lost", _("流失客户"), [lost.get(e, 0) for e in ids],
                   [customer_list_url(**q.list_params(follower=people[e].userid, lost_from=span["from"],
                                                      lost_to=span["to"])) for e in ids]),
        ],
    )
