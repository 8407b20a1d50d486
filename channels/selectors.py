"""Reads of channel codes: who sees and manages which codes (`codes_for`, the one definition the
admin and the API share), the list filters, the rotation's "who receives the next customer now",
the statistics and the warnings shown on a code's page."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_date
from django.utils.translation import gettext as _

from customers.models import RelationStatus
from org.actors import Actor
from org.models import Employee, EmployeeStatus, Role
from tagportal.errors import ValidationFailed
from tags.selectors import visible_tags

from .models import ChannelAdd, ChannelCode, Rotation

SHANGHAI = ZoneInfo("Asia/Shanghai")
MANAGE_ROLES = (Role.ENTERPRISE_ADMIN, Role.TAG_ADMIN)
ENDED = (RelationStatus.LOST, RelationStatus.DELETED)


def shanghai_day(moment: dt.datetime) -> dt.date:
    """The Asia/Shanghai calendar day of an instant (daily limits and statistics count by it)."""
    return moment.astimezone(SHANGHAI).date()


# ---------------------------------------------------------------- who sees and manages which codes


def manages_all_codes(actor: Actor) -> bool:
    """Enterprise level (API clients without an employee, automation), enterprise admins, tag admins."""
    return actor.is_enterprise or actor.employee.has_role(*MANAGE_ROLES)


def may_manage_codes(actor: Actor) -> bool:
    """May create codes at all: the roles above, and managers (for the departments they manage)."""
    return manages_all_codes(actor) or actor.employee.has_role(Role.MANAGER)


def managed_department_ids(employee: Employee) -> set[int]:
    cached = getattr(employee, "_channel_managed_dept_ids", None)
    if cached is None:
        cached = set(employee.managed_departments.values_list("pk", flat=True)) if employee.has_role(
            Role.MANAGER) else set()
        employee._channel_managed_dept_ids = cached
    return cached


def reachable_employee_ids(employee: Employee) -> set[int]:
    """Employees a manager may put on a code: themself and the members of the departments they
    manage (exactly those departments, as for customers)."""
    ids = {employee.pk}
    depts = managed_department_ids(employee)
    if depts:
        ids |= set(Employee.departments.through.objects.filter(department_id__in=depts)
                   .values_list("employee_id", flat=True))
    return ids


def codes_for(actor: Actor, action: str = "view", qs: QuerySet[ChannelCode] | None = None) -> QuerySet[ChannelCode]:
    """渠道活码可见性: enterprise level, enterprise admins and tag admins see and manage every code;
    managers see and manage the codes of the departments they manage; staff see (read only) the
    codes that send customers to them (as receiver or backup); anyone else (HR) sees none."""
    qs = ChannelCode.objects.all() if qs is None else qs
    if manages_all_codes(actor):
        return qs
    employee = actor.employee
    if employee.is_departed or not employee.is_active:
        return qs.none()
    depts = managed_department_ids(employee)
    managed = Q(department_id__in=depts) if depts else Q(pk__in=[])
    if action != "view":
        return qs.filter(managed)
    if not employee.has_role(Role.MANAGER, Role.STAFF):
        return qs.none()
    through = ChannelCode.employees.through
    backups = ChannelCode.backup_employees.through
    receives = Q(Exists(through.objects.filter(channelcode_id=OuterRef("pk"), employee_id=employee.pk))) | Q(
        Exists(backups.objects.filter(channelcode_id=OuterRef("pk"), employee_id=employee.pk)))
    return qs.filter(managed | receives)


def may_change_code(actor: Actor, code: ChannelCode) -> bool:
    return codes_for(actor, "change").filter(pk=code.pk).exists()


def usable_tags(actor: Actor):
    """Tags a code's author may put on it: the tags they see (locked groups included: a code is
    automation, rule 6)."""
    return visible_tags(actor.employee)


# ---------------------------------------------------------------- list filters

FILTER_KEYS = ("q", "state", "enabled", "receiver", "department", "tag")


def codes_filtered(qs: QuerySet[ChannelCode], params: Mapping[str, str]) -> QuerySet[ChannelCode]:
    """The list filters (bad values are 400 naming the key): `q` (name or state), `state`, `enabled`
    (true/false), `receiver` (userid, as employee or backup), `department` (id), `tag` (id)."""
    errors = {}
    q = (params.get("q") or "").strip()
    if q:
        qs = qs.filter(Q(name__icontains=q) | Q(state__icontains=q))
    if params.get("state"):
        qs = qs.filter(state=params["state"])
    enabled = params.get("enabled")
    if enabled not in (None, ""):
        if enabled.lower() in ("true", "1", "yes"):
            qs = qs.filter(enabled=True)
        elif enabled.lower() in ("false", "0", "no"):
            qs = qs.filter(enabled=False)
        else:
            errors["enabled"] = enabled
    if params.get("receiver"):
        userid = params["receiver"]
        qs = qs.filter(Q(employees__userid=userid) | Q(backup_employees__userid=userid)).distinct()
    for key, lookup in (("department", "department_id"), ("tag", "tags")):
        raw = params.get(key)
        if raw in (None, ""):
            continue
        if not raw.isdigit() or not 0 < int(raw) < 2**31:
            errors[key] = raw
            continue
        qs = qs.filter(**{lookup: int(raw)})
    if errors:
        key = next(iter(errors))
        raise ValidationFailed(_("筛选条件 %(k)s 的值无效：%(v)s") % {"k": key, "v": errors[key]}, details=errors)
    return qs


def with_counts(qs: QuerySet[ChannelCode], *, today: dt.date | None = None) -> QuerySet[ChannelCode]:
    """Each code with `added_total` and `added_today` (the list and the API show both)."""
    today = today or shanghai_day(timezone.now())
    return qs.annotate(
        added_total=Count("adds", distinct=True),
        added_today=Count("adds", filter=Q(adds__day=today), distinct=True),
    )


# ---------------------------------------------------------------- rotation


def _minutes(value: str) -> int:
    """"HH:MM" → minutes since midnight; "24:00" (a span that runs to the day's end) is 1440."""
    hour, minute = value.split(":")
    return int(hour) * 60 + int(minute)


def in_working_hours(code: ChannelCode, moment: dt.datetime) -> bool:
    """Within the code's working hours (Asia/Shanghai); a code without any is always open."""
    hours = code.working_hours or {}
    if not hours:
        return True
    local = moment.astimezone(SHANGHAI)
    now_m = local.hour * 60 + local.minute
    return any(_minutes(start) <= now_m < _minutes(end) for start, end in hours.get(str(local.weekday()), []))


@dataclass
class Receivers:
    """Who a code sends customers to right now: `employees` in rotation order (the next one first),
    whether they are the backups, and why nobody can when the list is empty."""

    employees: list[Employee] = field(default_factory=list)
    backup: bool = False
    reason: str = ""
    today: dict[int, int] = field(default_factory=dict)  # adds today per employee id

    @property
    def next(self) -> Employee | None:
        return self.employees[0] if self.employees else None

    @property
    def ids(self) -> list[int]:
        return sorted(e.pk for e in self.employees)


def adds_today(code: ChannelCode, day: dt.date) -> dict[int, int]:
    return dict(ChannelAdd.objects.filter(code=code, day=day).values_list("employee_id").annotate(n=Count("id"))
                .values_list("employee_id", "n"))


def receivers_now(code: ChannelCode, *, now: dt.datetime | None = None) -> Receivers:
    """谁接待下一位客户: the code's active employees under their daily limit (Asia/Shanghai day), in
    rotation order (round-robin: after the last one who received; least-loaded: fewest today); outside
    working hours or when every one is full, the backups likewise; nobody when none can."""
    now = now or timezone.now()
    today = shanghai_day(now)
    counts = adds_today(code, today)
    limit = code.daily_limit

    def available(employees) -> list[Employee]:
        return [e for e in employees if e.status == EmployeeStatus.ACTIVE and e.is_active
                and (limit is None or counts.get(e.pk, 0) < limit)]

    primary = sorted(code.employees.all(), key=lambda e: e.pk)
    backups = sorted(code.backup_employees.all(), key=lambda e: e.pk)
    open_now = in_working_hours(code, now)
    result = Receivers(today=counts)
    pool = available(primary) if open_now else []
    if not pool:
        result.backup = True
        pool = available(backups)
    if not pool:
        if not code.enabled:
            result.reason = _("渠道活码已停用。")
        elif not open_now and not backups:
            result.reason = _("当前不在工作时间，且没有备用成员。")
        elif limit is not None:
            result.reason = _("所有成员（含备用成员）今天都已达到每日上限 %(n)s 人。") % {"n": limit}
        else:
            result.reason = _("没有在职的接待成员或备用成员。")
        return result
    last = (ChannelAdd.objects.filter(code=code).order_by("-added_at", "-id")
            .values_list("employee_id", flat=True).first())
    if code.rotation == Rotation.LEAST_LOADED:
        order = {e.pk: i for i, e in enumerate(pool)}
        pool.sort(key=lambda e: (counts.get(e.pk, 0), e.pk == last, order[e.pk]))
    else:
        if last is not None:  # the one after the last who received, cyclically by id
            pool = [e for e in pool if e.pk > last] + [e for e in pool if e.pk <= last]
    result.employees = pool
    return result


# ---------------------------------------------------------------- statistics


def parse_range(params: Mapping[str, str], *, default_days: int = 30, max_days: int = 366) -> tuple[dt.date, dt.date]:
    """`from`/`to` (YYYY-MM-DD, Asia/Shanghai days, both included); default: the last 30 days."""
    today = shanghai_day(timezone.now())
    errors = {}
    values = {}
    for key in ("from", "to"):
        raw = params.get(key)
        if raw in (None, ""):
            continue
        try:
            values[key] = parse_date(raw)
        except ValueError:
            values[key] = None
        if values[key] is None:
            errors[key] = raw
    if errors:
        key = next(iter(errors))
        raise ValidationFailed(_("%(k)s 不是有效日期（YYYY-MM-DD）：%(v)s") % {"k": key, "v": errors[key]},
                               details=errors)
    end = values.get("to") or today
    start = values.get("from") or end - dt.timedelta(days=default_days - 1)
    if start > end:
        raise ValidationFailed(_("起始日期不能晚于结束日期。"), details={"from": str(start), "to": str(end)})
    if (end - start).days >= max_days:
        raise ValidationFailed(_("日期范围最多 %(n)s 天。") % {"n": max_days}, details={"from": str(start)})
    return start, end


def _ended_at(add_row: dict) -> dt.datetime | None:
    """When an add ended: its own `ended_at`, or (its relation still ended) the relation's end."""
    if add_row["ended_at"] is not None:
        return add_row["ended_at"]
    if add_row["relation__status"] in ENDED:
        return add_row["relation__ended_at"] or add_row["relation__added_at"]
    return None


@dataclass
class CodeStats:
    start: dt.date
    end: dt.date
    days: list[dict]
    employees: list[dict]
    totals: dict


def code_stats(code: ChannelCode, *, start: dt.date, end: dt.date) -> CodeStats:
    """Per Asia/Shanghai day from `start` to `end`: customers added through the code, lost (the relation
    ended: the employee deleted the customer or the customer deleted the employee; counted on the day it
    ended), and still followed (of that day's adds, those whose relation is still on); per employee the
    same over the range. One query over the code's adds in and since the range."""
    lo = dt.datetime.combine(start, dt.time.min, tzinfo=SHANGHAI)
    rows = list(
        ChannelAdd.objects.filter(code=code)
        .filter(Q(day__gte=start) | Q(ended_at__gte=lo) | Q(relation__ended_at__gte=lo))
        .values("day", "employee_id", "employee__userid", "employee__name", "ended_at", "relation__status",
                "relation__ended_at", "relation__added_at")
    )
    days = {start + dt.timedelta(days=i): {"added": 0, "lost": 0, "still_followed": 0}
            for i in range((end - start).days + 1)}
    per_employee: dict[int, dict] = {}
    for row in rows:
        ended = _ended_at(row)
        emp = per_employee.setdefault(row["employee_id"], {
            "employee": row["employee__userid"], "name": row["employee__name"], "added": 0, "lost": 0,
            "still_followed": 0})
        if row["day"] in days:
            days[row["day"]]["added"] += 1
            emp["added"] += 1
            if ended is None:
                days[row["day"]]["still_followed"] += 1
                emp["still_followed"] += 1
        if ended is not None:
            lost_day = shanghai_day(ended)
            if lost_day in days:
                days[lost_day]["lost"] += 1
                emp["lost"] += 1
    day_list = [{"date": d.isoformat(), **v} for d, v in sorted(days.items())]
    employees = sorted((e for e in per_employee.values() if e["added"] or e["lost"]),
                       key=lambda e: (-e["added"], e["employee"]))
    totals = {k: sum(d[k] for d in day_list) for k in ("added", "lost", "still_followed")}
    return CodeStats(start=start, end=end, days=day_list, employees=employees, totals=totals)


# ---------------------------------------------------------------- warnings on the code's page


def hidden_from_owner(code: ChannelCode) -> list:
    """Tags of the code its owner can no longer see (scope changed since it was saved): still applied
    (the code was allowed when saved), but the page says so."""
    if code.owner_id is None:
        return []
    owner = code.owner
    tags = list(code.tags.all())
    visible = set(visible_tags(owner).filter(pk__in=[t.pk for t in tags]).values_list("pk", flat=True))
    return [t for t in tags if t.pk not in visible]


def code_warnings(code: ChannelCode, *, now: dt.datetime | None = None) -> list[str]:
    """What a code's page warns about: nobody can receive now, departed receivers, hidden tags."""
    warnings = []
    receivers = receivers_now(code, now=now)
    if not receivers.employees:
        warnings.append(_("现在没有人能接待新客户：%(r)s") % {"r": receivers.reason})
    elif receivers.backup:
        warnings.append(_("接待成员已满或不在工作时间，新客户将由备用成员接待。"))
    departed = [e for e in code.employees.all() if e.status != EmployeeStatus.ACTIVE]
    if departed:
        names = "、".join(e.name or e.userid for e in departed)
        warnings.append(_("以下接待成员已离职，不再接待：%(n)s") % {"n": names})
    hidden = hidden_from_owner(code)
    if hidden:
        warnings.append(_("创建人已看不到以下标签，但扫码的客户仍会被打上：%(t)s") % {
            "t": "、".join(t.name for t in hidden)})
    return warnings
