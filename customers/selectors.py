"""Reads of customers. `visible_customers` is the one place that decides whose customers a caller sees;
`customers_filtered` adds the list filters of API.md on top of it (admin, API and jobs share both).

Filters are `EXISTS` sub-queries, never JOIN + DISTINCT: each tag filter is a semi-join on the
`(tag, customer)` index, so the first page of `ORDER BY id DESC LIMIT n` stops early and a count
never multiplies rows.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Prefetch, Q, QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.translation import gettext as _

from org.models import Employee, Role
from tagportal.errors import ValidationFailed
from tagportal.ids import as_id, id_list_errors, is_id
from tags.selectors import sees_everything, visible_tags

from .models import (
    Customer,
    FollowRelation,
    Message,
    Note,
    PersonalTagging,
    RelationStatus,
    TagEvent,
    Tagging,
    TagSource,
)

SEE_ALL_ROLES = (Role.ENTERPRISE_ADMIN, Role.TAG_ADMIN, Role.HR)


def sees_all_customers(employee: Employee | None) -> bool:
    """Enterprise level (None), enterprise admins, tag admins and HR see every customer."""
    return employee is None or employee.has_role(*SEE_ALL_ROLES)


def _reach_employee_ids(employee: Employee) -> list[int]:
    """Employees whose customers `employee` sees: themself, plus (managers) the members of the
    departments they manage, exactly those departments (sub-departments are not inherited).
    Resolved to a short list of ids, so the planner knows how few they are; kept on the employee
    instance (one request asks up to three times: list, count, filter), as Django keeps permissions."""
    cached = getattr(employee, "_reach_employee_ids", None)
    if cached is not None:
        return cached
    ids = [employee.pk]
    if employee.has_role(Role.MANAGER):
        members = Employee.objects.filter(departments__in=employee.managed_departments.all())
        ids = sorted({employee.pk, *members.values_list("pk", flat=True)})
    employee._reach_employee_ids = ids
    return ids


def visible_follower_ids(employee: Employee | None) -> list[int] | None:
    """Whose active follow relations make a customer visible to `employee` (the same rule as
    `visible_customers`): None = every customer is visible, [] = none is. Aggregates keyed by the
    followers (数据看板) select by these ids."""
    if sees_all_customers(employee):
        return None
    if employee.is_departed or not employee.is_active:
        return []
    return list(_reach_employee_ids(employee))


def _visibility_condition(employee: Employee | None, ref: str):
    """The visibility rule as one condition on the customer id found at `ref` (None: no restriction;
    False: nothing visible)."""
    if sees_all_customers(employee):
        return None
    if employee.is_departed or not employee.is_active:
        return False
    return Exists(
        FollowRelation.objects.filter(
            customer_id=OuterRef(ref), status=RelationStatus.ACTIVE, employee_id__in=_reach_employee_ids(employee)
        )
    )


def visible_customers(employee: Employee | None) -> QuerySet[Customer]:
    """客户可见性 (rule 5): staff see the customers they follow (an active relation); managers those
    plus customers followed by members of the departments they manage (exact, not inherited);
    HR, tag admins, enterprise admins and enterprise level (None) see all. A departed employee sees none."""
    condition = _visibility_condition(employee, "pk")
    if condition is None:
        return Customer.objects.all()
    if condition is False:
        return Customer.objects.none()
    return Customer.objects.filter(condition)


# ---------------------------------------------------------------- filters


@dataclass(frozen=True)
class CustomerFilter:
    """The customer list's filters (API.md names). Immutable; `as_params()` round-trips through
    `parse_customer_filter`, so a job can store a selection "all N matching" as JSON."""

    tags_all: tuple[int, ...] = ()
    tags_any: tuple[int, ...] = ()
    tags_none: tuple[int, ...] = ()
    follower: str | None = None
    department: int | None = None
    state: str | None = None
    external_userid: str | None = None
    q: str | None = None
    updated_since: dt.datetime | None = None
    added_from: dt.date | None = None
    added_to: dt.date | None = None
    # 数据看板's click-throughs. `untagged`: True = no enterprise tag at all, False = at least one.
    untagged: bool | None = None
    # A follow relation that ended (lost / deleted) in this range; follower, department, state and
    # added_* then describe that ended relation instead of an active one.
    lost_from: dt.date | None = None
    lost_to: dt.date | None = None
    # Activity on the customer in a date range: `tags` (a change of a tag the viewer sees, of
    # `activity_source` when given), `notes` (跟进记录) or `messages` (聊天记录).
    activity: str | None = None
    activity_from: dt.date | None = None
    activity_to: dt.date | None = None
    activity_source: str | None = None

    @property
    def tag_ids(self) -> set[int]:
        return set(self.tags_all) | set(self.tags_any) | set(self.tags_none)

    @property
    def is_empty(self) -> bool:
        return not self.as_params()

    def as_params(self) -> dict[str, str]:
        """The filter as query parameters (strings only; empty values left out)."""
        out: dict[str, str] = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if value in (None, (), ""):
                continue
            if isinstance(value, bool):
                out[field.name] = "1" if value else "0"
            elif isinstance(value, tuple):
                out[field.name] = ",".join(str(v) for v in value)
            elif isinstance(value, dt.datetime | dt.date):
                out[field.name] = value.isoformat()
            else:
                out[field.name] = str(value)
        return out


FILTER_KEYS = tuple(f.name for f in dataclasses.fields(CustomerFilter))
ACTIVITY_KINDS = ("tags", "notes", "messages")


def _id_list(key: str, raw: str, errors: dict) -> tuple[int, ...]:
    ids, bad = id_list_errors(str(raw))  # range-checked: 1 … 2**63 - 1 (tagportal.ids)
    if bad:
        errors[key] = bad
    return ids


def parse_customer_filter(params: Mapping[str, str]) -> CustomerFilter:
    """Read the filters out of query parameters (other keys are ignored). Bad values raise
    `ValidationFailed` naming each bad key and value."""
    errors: dict[str, object] = {}
    values: dict[str, object] = {}

    def get(key):
        value = params.get(key)
        if isinstance(value, list | tuple):  # a QueryDict's lists, or JSON arrays
            value = ",".join(str(v) for v in value)
        if value is None:
            return None
        value = str(value).strip()
        if "\x00" in value:  # PostgreSQL cannot compare text with NUL: bad input, not a 500
            errors[key] = _("不能包含 NUL 字符")
            return None
        return value or None

    for key in ("tags_all", "tags_any", "tags_none"):
        raw = get(key)
        if raw is not None:
            values[key] = _id_list(key, raw, errors)
    for key in ("follower", "state", "external_userid", "q"):
        raw = get(key)
        if raw is not None:
            values[key] = raw
    raw = get("department")
    if raw is not None:
        if is_id(raw):
            values["department"] = as_id(raw)
        else:
            errors["department"] = raw
    raw = get("updated_since")
    if raw is not None:
        try:
            parsed = parse_datetime(raw)
            if parsed is None:
                day = parse_date(raw)
                parsed = dt.datetime.combine(day, dt.time.min) if day else None
        except ValueError:
            parsed = None
        if parsed is None:
            errors["updated_since"] = raw
        else:
            if timezone.is_naive(parsed):
                parsed = timezone.make_aware(parsed)
            values["updated_since"] = parsed
    raw = get("untagged")
    if raw is not None:
        if raw.lower() in ("1", "true", "yes"):
            values["untagged"] = True
        elif raw.lower() in ("0", "false", "no"):
            values["untagged"] = False
        else:
            errors["untagged"] = raw
    raw = get("activity")
    if raw is not None:
        if raw in ACTIVITY_KINDS:
            values["activity"] = raw
        else:
            errors["activity"] = raw
    raw = get("activity_source")
    if raw is not None:
        if raw in TagSource.values:
            values["activity_source"] = raw
        else:
            errors["activity_source"] = raw
    for key in ("added_from", "added_to", "lost_from", "lost_to", "activity_from", "activity_to"):
        raw = get(key)
        if raw is not None:
            try:
                day = parse_date(raw)
            except ValueError:
                day = None
            if day is None:
                errors[key] = raw
            else:
                values[key] = day
    if "activity" not in values and "activity" not in errors:
        for key in ("activity_from", "activity_to", "activity_source"):
            if key in values:  # a range of what? (tags, notes or messages)
                errors["activity"] = _("与 %(key)s 一起使用时必填") % {"key": key}
                break
    if values.get("activity_source") and values.get("activity") not in (None, "tags"):
        errors["activity_source"] = _("只用于 activity=tags")
    if errors:
        first = next(iter(errors))
        raise ValidationFailed(_("筛选条件无效：%(key)s") % {"key": first}, details=errors)
    return CustomerFilter(**values)


def _day_start(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


def _check_filter_tags(employee: Employee | None, flt: CustomerFilter) -> None:
    tag_ids = flt.tag_ids
    if not tag_ids:
        return
    visible = visible_tag_id_set(employee)
    if visible is None:
        visible = set(visible_tags(None).filter(pk__in=tag_ids).values_list("pk", flat=True))
    unknown = sorted(tag_ids - visible)
    if unknown:
        raise ValidationFailed(
            _("未知或不可见的标签：%(ids)s") % {"ids": ", ".join(map(str, unknown))},
            details={"tags": unknown},
            code="unknown_tags",
        )


def _day_range(field: str, start: dt.date | None, end: dt.date | None) -> Q:
    """`field` within the days `start`..`end` (both included, local time); either may be open."""
    q = Q()
    if start:
        q &= Q(**{f"{field}__gte": _day_start(start)})
    if end:
        q &= Q(**{f"{field}__lt": _day_start(end + dt.timedelta(days=1))})
    return q


ENDED_STATUSES = (RelationStatus.LOST, RelationStatus.DELETED)


def _filter_conditions(
    flt: CustomerFilter, ref: str, *, skip_tag: int | None = None, visible_tag_ids: set[int] | None = None
) -> list:
    """The filter as conditions on the customer id at `ref` ("pk" from customers, "customer_id" from
    a tagging); customer columns are reached through `customer__` when anchored elsewhere.
    `visible_tag_ids` (None = all) bounds the tag changes `activity=tags` looks at."""
    col = "" if ref == "pk" else "customer__"
    conditions = []
    for tag_id in flt.tags_all:
        if tag_id != skip_tag:
            conditions.append(Exists(Tagging.objects.filter(customer_id=OuterRef(ref), tag_id=tag_id)))
    if flt.tags_any:
        conditions.append(Exists(Tagging.objects.filter(customer_id=OuterRef(ref), tag_id__in=flt.tags_any)))
    if flt.tags_none:
        conditions.append(~Exists(Tagging.objects.filter(customer_id=OuterRef(ref), tag_id__in=flt.tags_none)))

    # Follower-side conditions describe one follow relation: "followed by X of department D, added in May".
    rel = Q()
    if flt.follower:
        rel &= Q(employee__userid=flt.follower)
    if flt.department:
        rel &= Q(employee__departments=flt.department)
    if flt.state:
        rel &= Q(state=flt.state)
    if flt.added_from:
        rel &= Q(added_at__gte=_day_start(flt.added_from))
    if flt.added_to:
        rel &= Q(added_at__lt=_day_start(flt.added_to + dt.timedelta(days=1)))
    if flt.lost_from or flt.lost_to:  # the relation described is one that ended in that range
        rel &= Q(status__in=ENDED_STATUSES, ended_at__isnull=False) & _day_range("ended_at", flt.lost_from, flt.lost_to)
        conditions.append(Exists(FollowRelation.objects.filter(rel, customer_id=OuterRef(ref))))
    elif rel:
        relations = FollowRelation.objects.filter(rel, customer_id=OuterRef(ref), status=RelationStatus.ACTIVE)
        conditions.append(Exists(relations))

    if flt.untagged is not None:
        tagged = Exists(Tagging.objects.filter(customer_id=OuterRef(ref)))
        conditions.append(~tagged if flt.untagged else tagged)
    if flt.activity == "tags":
        events = TagEvent.objects.filter(
            _day_range("created_at", flt.activity_from, flt.activity_to), customer_id=OuterRef(ref), tag__isnull=False
        )
        if flt.activity_source:
            events = events.filter(source=flt.activity_source)
        if visible_tag_ids is not None:
            events = events.filter(tag_id__in=sorted(visible_tag_ids))
        conditions.append(Exists(events))
    elif flt.activity == "notes":
        notes = Note.objects.filter(_day_range("created_at", flt.activity_from, flt.activity_to))
        conditions.append(Exists(notes.filter(customer_id=OuterRef(ref))))
    elif flt.activity == "messages":
        msgs = Message.objects.filter(_day_range("sent_at", flt.activity_from, flt.activity_to))
        conditions.append(Exists(msgs.filter(customer_id=OuterRef(ref))))

    if flt.external_userid:
        conditions.append(Q(**{f"{col}external_userid": flt.external_userid}))
    if flt.q:
        remarks = FollowRelation.objects.filter(customer_id=OuterRef(ref), remark__icontains=flt.q)
        conditions.append(Q(**{f"{col}name__icontains": flt.q}) | Q(Exists(remarks)))
    if flt.updated_since:
        conditions.append(Q(**{f"{col}updated_at__gte": flt.updated_since}))
    return conditions


def customers_filtered(*, employee: Employee | None, flt: CustomerFilter) -> QuerySet[Customer]:
    """The customers `employee` sees that match `flt`, newest first.

    Tag ids in the filter must be tags the employee sees: filtering by a hidden tag would
    reveal who carries it (400 with the offending ids).
    """
    _check_filter_tags(employee, flt)
    conditions = _filter_conditions(flt, "pk", visible_tag_ids=_activity_tag_ids(employee, flt))
    return visible_customers(employee).filter(*conditions).order_by("-id")


def _activity_tag_ids(employee: Employee | None, flt: CustomerFilter) -> set[int] | None:
    """The tags whose changes `activity=tags` counts: those the employee sees (None: all)."""
    if flt.activity != "tags" or sees_everything(employee):
        return None
    return visible_tag_id_set(employee)


TAG_STATS_TTL = 60.0  # seconds the planner's tag frequencies are reused (they change on ANALYZE only)
_tag_stats: dict[str, tuple[float, dict[int, float]]] = {}


def _tag_frequencies() -> dict[int, float]:
    """tag id -> share of taggings, for the planner's most common tags (pg_stats), kept a minute per process:
    only which tag anchors a count depends on it, never the count."""
    now = time.monotonic()
    cached = _tag_stats.get(connection.alias)
    if cached is not None and now - cached[0] < TAG_STATS_TTL:
        return cached[1]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT most_common_vals::text, most_common_freqs FROM pg_stats "
            "WHERE tablename = %s AND attname = 'tag_id'",
            [Tagging._meta.db_table],
        )
        row = cursor.fetchone()
    freqs = {}
    if row and row[0]:
        freqs = dict(zip((int(v) for v in row[0].strip("{}").split(",")), row[1], strict=False))
    _tag_stats[connection.alias] = (now, freqs)
    return freqs


def _rarest_tag(tag_ids: tuple[int, ...]) -> int:
    """The least used of `tag_ids`, from the planner's statistics (PostgreSQL); else the first."""
    if connection.vendor != "postgresql" or len(tag_ids) < 2:
        return tag_ids[0]
    freqs = _tag_frequencies()
    if not freqs:
        return tag_ids[0]
    # A tag missing from the common values is rarer than all of them.
    return min(tag_ids, key=lambda t: freqs.get(t, 0.0))


def customers_count_queryset(*, employee: Employee | None, flt: CustomerFilter) -> QuerySet:
    """The query `customers_count` counts (exposed for the benchmark's EXPLAIN): the rarest has-all-of tag's
    taggings when there is one, else the filtered customers."""
    _check_filter_tags(employee, flt)
    if not flt.tags_all:
        return customers_filtered(employee=employee, flt=flt).order_by()
    visibility = _visibility_condition(employee, "customer_id")
    if visibility is False:
        return Tagging.objects.none()
    anchor = _rarest_tag(flt.tags_all)
    conditions = _filter_conditions(
        flt, "customer_id", skip_tag=anchor, visible_tag_ids=_activity_tag_ids(employee, flt)
    )
    if visibility is not None:
        conditions.append(visibility)
    return Tagging.objects.filter(*conditions, tag_id=anchor).order_by()


# How a count over hundreds of thousands of index entries runs fastest on a busy small server: one process
# (parallel workers only compete for the same cores; the serial merge/hash joins over the (tag, customer)
# index did the same count in about half the time at 1M customers), no JIT compilation (100+ ms to save
# a few), and enough memory that the hash of a manager's ~200k followed customers stays in one batch.
COUNT_SETTINGS = {"max_parallel_workers_per_gather": "0", "jit": "off", "work_mem": "32MB"}


@contextlib.contextmanager
def local_settings(**settings: str) -> Iterator[None]:
    """PostgreSQL settings for the queries run inside, in a transaction (or a savepoint): set with
    `set_config(..., true)`, so they end with it; inside an outer transaction they are put back on the
    way out (it must not inherit them), and an error rolls them back with the savepoint. Elsewhere
    (SQLite) a no-op."""
    if connection.vendor != "postgresql" or not settings:
        yield
        return
    names = list(settings)
    assign = "SELECT " + ", ".join(["set_config(%s, %s, true)"] * len(names))
    nested = connection.in_atomic_block  # else the transaction below ends, and the settings with it
    with transaction.atomic(), connection.cursor() as cursor:
        if nested:
            cursor.execute("SELECT " + ", ".join(["current_setting(%s)"] * len(names)), names)
            previous = cursor.fetchone()
        cursor.execute(assign, [v for name in names for v in (name, settings[name])])
        yield
        if nested:
            cursor.execute(assign, [v for name, old in zip(names, previous, strict=True) for v in (name, old)])


def customers_count(*, employee: Employee | None, flt: CustomerFilter) -> int:
    """"全部 N 个匹配": how many customers `employee` sees match `flt`, the same set as `customers_filtered`.

    With a has-all-of tag filter the count is anchored on the rarest of those tags' taggings (unique per
    (tag, customer), so one row per customer) instead of the million-row customer table: index-only scans
    and semi-joins only, run with `COUNT_SETTINGS`.
    """
    qs = customers_count_queryset(employee=employee, flt=flt)
    with local_settings(**COUNT_SETTINGS):
        return qs.count()


# ---------------------------------------------------------------- cards: what a list row or portrait shows


def visible_tag_id_set(employee: Employee | None) -> set[int] | None:
    """The ids of the tags `employee` sees, computed once per employee instance (one request); None = all."""
    if employee is None:
        return None
    cached = getattr(employee, "_visible_tag_id_set", None)
    if cached is None:
        cached = set(visible_tags(employee).values_list("pk", flat=True))
        employee._visible_tag_id_set = cached
    return cached


def remember_visible_tag_ids(employee: Employee | None, tag_ids) -> None:
    """Prime `visible_tag_id_set` with the ids of tags already loaded from `visible_tags(employee)` in this
    request (the list page builds the tree first): one query less."""
    if employee is not None:
        employee._visible_tag_id_set = set(tag_ids)


def with_card_data(qs: QuerySet[Customer], *, employee: Employee | None) -> QuerySet[Customer]:
    """Prefetch what a customer row shows to `employee`, in three queries for the whole page (never one per
    row): `active_followers` (active relations with their employee), `visible_taggings` (taggings of tags
    the employee sees; `tag_id` only, look names up in the small taxonomy) and `own_personal_taggings`
    (the employee's personal tags, with the tag)."""
    taggings = Tagging.objects.only("id", "customer_id", "tag_id").order_by("tag_id")
    visible = visible_tag_id_set(employee)
    if visible is not None:
        taggings = taggings.filter(tag_id__in=sorted(visible))
    personal = PersonalTagging.objects.none()
    if employee is not None:
        personal = PersonalTagging.objects.filter(personal_tag__owner=employee).select_related("personal_tag")
    followers = FollowRelation.objects.filter(status=RelationStatus.ACTIVE).select_related("employee")
    return qs.prefetch_related(
        Prefetch("follow_relations", queryset=followers.order_by("added_at", "id"), to_attr="active_followers"),
        Prefetch("taggings", queryset=taggings, to_attr="visible_taggings"),
        Prefetch("personal_taggings", queryset=personal.order_by("personal_tag__name"),
                 to_attr="own_personal_taggings"),
    )


def customer_visible_tag_ids(*, employee: Employee | None, customer: Customer) -> list[int]:
    """The customer's enterprise tags that `employee` sees (rule 8's "what this person may touch")."""
    qs = Tagging.objects.filter(customer=customer)
    if employee is not None:
        qs = qs.filter(tag__in=visible_tags(employee))
    return sorted(qs.values_list("tag_id", flat=True))


def customer_own_personal_tag_ids(*, employee: Employee | None, customer: Customer) -> list[int]:
    if employee is None:
        return []
    return sorted(
        PersonalTagging.objects.filter(customer=customer, personal_tag__owner=employee).values_list(
            "personal_tag_id", flat=True
        )
    )
