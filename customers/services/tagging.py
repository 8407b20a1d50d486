"""The one tagging service every path uses (admin, API, bulk jobs, channel codes, keyword rules,
transfers, WeCom).

Tagging rules (DESIGN.md 5-10), enforced here and nowhere else:
- scope: only tags `tags.selectors.visible_tags(actor.employee)` returns; anything else is unknown (400);
- locked groups (a locked group or ancestor): staff and managers may neither apply nor remove (403);
  tag admins, enterprise admins, enterprise-level API clients and automation may;
- single-choice groups: applying one removes the customer's other tags of that group (each audited);
  two tags of one such group in one call is a 400;
- personal tags: only the actor's own, and only added on customers the actor follows;
- never a duplicate, never a hidden tag touched, a customer out of reach is 404;
- one `TagEvent` per change, with source, actor and job.

`customers_tags_bulk_update` is the set-based variant: it validates every operation first, then
writes with a handful of statements per chunk (`INSERT ... ON CONFLICT DO NOTHING RETURNING` and
`DELETE ... RETURNING` on PostgreSQL), whatever the number of customers.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import connection, transaction
from django.db.models.expressions import RawSQL
from django.utils import timezone
from django.utils.translation import gettext as _

from org.actors import Actor
from org.models import Employee, EmployeeStatus, Role
from tagportal.errors import NotAllowed, NotFound, ValidationFailed
from tagportal.ids import as_id, is_id
from tags.models import PersonalTag, Tag, TagGroup
from tags.selectors import locked_group_ids, visible_tags

from ..models import (
    Customer,
    FollowRelation,
    Job,
    PersonalTagging,
    RelationStatus,
    TagAction,
    TagEvent,
    Tagging,
    TagSource,
)
from ..selectors import visible_customers

# ---------------------------------------------------------------- results


@dataclass
class TagChange:
    """What one `customer_tags_update` did: tags and personal tags added and removed."""

    added: list[Tag] = field(default_factory=list)
    removed: list[Tag] = field(default_factory=list)
    personal_added: list[PersonalTag] = field(default_factory=list)
    personal_removed: list[PersonalTag] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.added or self.removed or self.personal_added or self.personal_removed)


@dataclass(frozen=True)
class TagOperation:
    """One item of a bulk call: tags to add to and remove from one customer."""

    customer_id: int
    add: tuple[int, ...] = ()
    remove: tuple[int, ...] = ()


@dataclass
class BulkResult:
    """Counts of a bulk call: taggings added, removed (single-choice siblings included), and
    requested changes that were already so."""

    added: int = 0
    removed: int = 0
    unchanged: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"added": self.added, "removed": self.removed, "unchanged": self.unchanged}


# ---------------------------------------------------------------- rights and taxonomy


def _check_actor_can_write(actor: Actor) -> None:
    if not actor.can_write:
        raise NotAllowed(_("只读密钥不能写入。"), code="read_only")
    employee = actor.employee
    if employee is not None and (employee.status == EmployeeStatus.DEPARTED or not employee.is_active):
        raise NotAllowed(_("离职成员不能再操作。"), code="departed")


CUSTOMER_EDITOR_ROLES = (Role.ENTERPRISE_ADMIN, Role.TAG_ADMIN, Role.MANAGER, Role.STAFF)


def may_change_customers(actor: Actor) -> bool:
    """HR sees every customer (to hand them over, rule 5) but changes none of their tags and writes
    no notes; an employee who is HR *and* staff, manager or an admin may, through that other role.
    Enterprise level (API clients without an employee, automation) may."""
    employee = actor.employee
    return employee is None or not employee.has_role(Role.HR) or employee.has_role(*CUSTOMER_EDITOR_ROLES)


def _check_may_change_customers(actor: Actor, source: str | None = None) -> None:
    """HR's own edits are refused; a transfer HR runs (source `transfer`) may still move tags."""
    if source != TagSource.TRANSFER and not may_change_customers(actor):
        raise NotAllowed(_("人事只能查看客户，不能修改客户标签或写跟进记录。"), code="hr_read_only")


def _has_nul(value: Any) -> bool:
    """A NUL character anywhere in a string, a mapping's keys or values, or a list: PostgreSQL
    stores none of them (text and jsonb), so it is bad input, not a server error."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, Mapping):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(_has_nul(v) for v in value)
    return False


def can_change_locked(actor: Actor) -> bool:
    """Locked groups: tag admins, enterprise admins, and enterprise level (API clients without an
    employee, automation) may apply and remove their tags; staff and managers may not."""
    return actor.manages_taxonomy


class _Taxonomy:
    """The tag groups (a few hundred rows at most) and the tags a call names, loaded once."""

    def __init__(self, tag_ids: Iterable[int]):
        self.groups = {
            g["pk"]: g for g in TagGroup.objects.values("pk", "parent_id", "locked", "single_choice")
        }
        self.tags: dict[int, Tag] = {t.pk: t for t in Tag.objects.filter(pk__in=set(tag_ids))}
        self._siblings: dict[int, set[int]] = {}
        self._locked: set[int] | None = None

    def locked(self, tag_id: int) -> bool:
        """Its group or an ancestor is locked (`tags.selectors.locked_group_ids`, as the portrait form)."""
        if self._locked is None:
            self._locked = locked_group_ids()
        return self.tags[tag_id].group_id in self._locked

    def single_choice_group(self, tag_id: int) -> int | None:
        group_id = self.tags[tag_id].group_id
        return group_id if self.groups[group_id]["single_choice"] else None

    def siblings(self, tag_id: int) -> set[int]:
        """The other tags of a single-choice group (loaded once per group)."""
        group_id = self.tags[tag_id].group_id
        if group_id not in self._siblings:
            self._siblings[group_id] = set(Tag.objects.filter(group_id=group_id).values_list("pk", flat=True))
        return self._siblings[group_id] - {tag_id}

    def names(self, ids: Iterable[int]) -> dict[int, str]:
        missing = [i for i in ids if i not in self.tags]
        if missing:
            self.tags.update({t.pk: t for t in Tag.objects.filter(pk__in=missing)})
        return {i: self.tags[i].name for i in ids if i in self.tags}


def _visible_tag_ids(actor: Actor, tag_ids: set[int]) -> set[int]:
    if not tag_ids:
        return set()
    return set(visible_tags(actor.employee).filter(pk__in=tag_ids).values_list("pk", flat=True))


def _as_ids(values: Iterable[Any], key: str) -> tuple[int, ...]:
    ids, bad = [], []
    for value in values or ():
        if isinstance(value, Tag | PersonalTag):
            ids.append(value.pk)
        elif is_id(value):  # range-checked before the database (tagportal.ids)
            ids.append(as_id(value))
        else:
            bad.append(value)
    if bad:
        raise ValidationFailed(_("%(key)s 必须是标签 id 列表。") % {"key": key}, details={key: bad})
    return tuple(dict.fromkeys(ids))


def _check_source(source: str) -> None:
    if source not in TagSource.values:
        raise ValueError(f"unknown tag source {source!r}")


def _item_errors(
    actor: Actor, add: set[int], remove: set[int], taxonomy: _Taxonomy, visible: set[int], source: str | None = None
) -> list[dict]:
    """The rule violations of one customer's enterprise-tag change, each with the offending ids."""
    errors = []
    if source != TagSource.TRANSFER and not may_change_customers(actor):  # also what a bulk job checks before it starts
        errors.append({"code": "hr_read_only", "message": _("人事只能查看客户，不能修改客户标签"),
                       "tags": sorted(add | remove)})
    unknown = sorted((add | remove) - visible)
    if unknown:
        errors.append({"code": "unknown_tags", "message": _("未知或不可见的标签"), "tags": unknown})
    both = sorted(add & remove)
    if both:
        errors.append({"code": "add_and_remove", "message": _("同一标签不能同时添加和移除"), "tags": both})
    known = (add | remove) - set(unknown)
    if not can_change_locked(actor):
        locked = sorted(t for t in known if taxonomy.locked(t))
        if locked:
            errors.append({"code": "locked", "message": _("锁定标签组的标签不能打或移除"), "tags": locked})
    by_group: dict[int, list[int]] = defaultdict(list)
    for tag_id in add - set(unknown):
        group_id = taxonomy.single_choice_group(tag_id)
        if group_id is not None:
            by_group[group_id].append(tag_id)
    for tag_ids in by_group.values():
        if len(tag_ids) > 1:
            errors.append(
                {"code": "single_choice", "message": _("单选标签组一次只能打一个标签"), "tags": sorted(tag_ids)}
            )
    return errors


# ---------------------------------------------------------------- set-based writes


def _chunks(items: Sequence, size: int):
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _in_chunk_size() -> int:
    return 20_000 if connection.vendor == "postgresql" else 500


def _pg_ids(ids: Iterable[int]) -> str:
    """A `bigint[]` literal for one array parameter (`= ANY(%s::bigint[])`, `unnest(...)`): psycopg
    dumps a Python list element by element (about 2 µs each, 0.3 s for a 100,000-tagging call);
    the ids are ints (`int.__repr__` refuses anything else), so their text form is safe."""
    return "{" + ",".join(map(int.__repr__, ids)) + "}"


class _SqlAudit:
    """Audit rows written by the statement that makes the change (PostgreSQL): the `INSERT` or
    `DELETE ... RETURNING` of taggings is a CTE whose rows become TagEvents in the same statement
    (tag names joined from the tag table), so no pair travels to Python and back."""

    def __init__(self, *, actor: Actor, source: str, job: Job | None, now):
        fields = _actor_fields(actor, job)
        self.now = now
        self.params = [
            source,
            fields["actor_employee"].pk if fields["actor_employee"] else None,
            fields["actor_client"].pk if fields["actor_client"] else None,
            fields["actor_label"],
            job.pk if job else None,
            now,
        ]

    def wrap(self, change_sql: str, change_params: list, action: str) -> tuple[str, list]:
        """`change_sql` must end with `RETURNING customer_id, tag_id`; the result returns the same."""
        event, tag = TagEvent._meta.db_table, Tag._meta.db_table
        sql = (
            f"WITH changed AS ({change_sql}) "
            f"INSERT INTO {event} (customer_id, tag_id, tag_name, action, source, actor_employee_id, "
            "actor_client_id, actor_label, job_id, created_at) "
            "SELECT changed.customer_id, changed.tag_id, COALESCE(left(tag.name, 64), ''), %s, %s, "
            "%s::bigint, %s::bigint, %s, %s::bigint, %s "
            f"FROM changed LEFT JOIN {tag} tag ON tag.id = changed.tag_id "
            "RETURNING customer_id, tag_id"
        )
        return sql, [*change_params, action, *self.params]


def _customer_groups(adds: Mapping[int, Iterable[int]]) -> list[tuple[list[int], list[int]]]:
    """{tag_id: customer ids} as groups of tags that go to the same customers: [(customers, tags)],
    both sorted. A bulk call or a job chunk gives a few groups (one when every operation adds the
    same tags), so the (customer, tag) pairs are made by the database, not built in Python."""
    groups: dict[frozenset[int], list[int]] = {}
    for tag_id, customer_ids in adds.items():
        customers = frozenset(customer_ids)
        if customers:
            groups.setdefault(customers, []).append(tag_id)
    return [(sorted(customers), sorted(tags)) for customers, tags in groups.items()]


INSERT_CHUNK = 50_000  # pairs per statement (its RETURNING and audit rows stay within work_mem)


def _insert_taggings(
    adds: Mapping[int, Iterable[int]], now, audit: _SqlAudit | None = None
) -> list[tuple[int, int]]:
    """Insert taggings {tag_id: customer ids}, skipping those that exist; return the (customer_id,
    tag_id) pairs inserted (audited in the same statement when `audit` is given, PostgreSQL only)."""
    inserted: list[tuple[int, int]] = []
    if connection.vendor == "postgresql":
        # Customer by customer (`unnest` in the select list expands each customer's tags in turn):
        # the heap and the (customer, tag) index fill in order, and each tag's part of the
        # (tag, customer) index advances in order too: measured faster than tag by tag.
        sql = (
            f"INSERT INTO {Tagging._meta.db_table} (customer_id, tag_id, created_at) "
            "SELECT c, unnest(%s::bigint[]), %s FROM unnest(%s::bigint[]) AS c "
            "ON CONFLICT (tag_id, customer_id) DO NOTHING RETURNING customer_id, tag_id"
        )
        with connection.cursor() as cursor:
            for customers, tags in _customer_groups(adds):
                tag_array = _pg_ids(tags)
                for chunk in _chunks(customers, max(1, INSERT_CHUNK // len(tags))):
                    statement, params = sql, [tag_array, now, _pg_ids(chunk)]
                    if audit is not None:
                        statement, params = audit.wrap(statement, params, TagAction.ADD)
                    cursor.execute(statement, params)
                    inserted.extend(cursor.fetchall())
        return inserted
    # Elsewhere (SQLite, single writer): read what exists, insert the rest.
    for tag_id, customer_ids in adds.items():
        customer_ids = sorted(set(customer_ids))
        existing: set[int] = set()
        for chunk in _chunks(customer_ids, _in_chunk_size()):
            existing.update(Tagging.objects.filter(tag_id=tag_id, customer_id__in=chunk).values_list("customer_id",
                                                                                                     flat=True))
        inserted += [(c, tag_id) for c in customer_ids if c not in existing]
    Tagging.objects.bulk_create(
        [Tagging(customer_id=c, tag_id=t, created_at=now) for c, t in inserted], batch_size=2000, ignore_conflicts=True
    )
    return inserted


def _delete_taggings(
    by_tag: Mapping[int, Iterable[int]], audit: _SqlAudit | None = None
) -> list[tuple[int, int]]:
    """Delete taggings {tag_id: customer ids}; return the (customer_id, tag_id) pairs that existed
    (audited in the same statement when `audit` is given, PostgreSQL only)."""
    removed: list[tuple[int, int]] = []
    for tag_id, customer_ids in by_tag.items():
        customer_ids = sorted(set(customer_ids))
        for chunk in _chunks(customer_ids, _in_chunk_size()):
            if connection.vendor == "postgresql":
                sql = (
                    f"DELETE FROM {Tagging._meta.db_table} WHERE tag_id = %s AND customer_id = ANY(%s::bigint[]) "
                    "RETURNING customer_id, tag_id"
                )
                params = [tag_id, _pg_ids(chunk)]
                if audit is not None:
                    sql, params = audit.wrap(sql, params, TagAction.REMOVE)
                with connection.cursor() as cursor:
                    cursor.execute(sql, params)
                    removed.extend(cursor.fetchall())
            else:
                rows = Tagging.objects.filter(tag_id=tag_id, customer_id__in=chunk)
                removed.extend(rows.values_list("customer_id", "tag_id"))
                rows.delete()
    return removed


def _delete_siblings(
    by_tag: Mapping[int, Iterable[int]], taxonomy: _Taxonomy, audit: _SqlAudit | None = None
) -> list[tuple[int, int]]:
    """Single-choice: for each tag applied, remove its group siblings from those customers."""
    by_sibling: dict[int, set[int]] = defaultdict(set)
    for tag_id, customer_ids in by_tag.items():
        if taxonomy.single_choice_group(tag_id) is None:
            continue
        for sibling in taxonomy.siblings(tag_id):
            by_sibling[sibling].update(customer_ids)
    return _delete_taggings(by_sibling, audit)


def _actor_fields(actor: Actor, job: Job | None) -> dict:
    label = actor.label or str(actor)
    return {
        "actor_employee": actor.employee,
        "actor_client": actor.api_client,
        "actor_label": label[:100],
        "job": job,
    }


def _audit(pairs: Iterable[tuple[int, int]], action: str, *, actor, source, job, now, names, personal=False) -> int:
    """One TagEvent per (customer_id, tag_id) pair: `COPY` on PostgreSQL, `bulk_create` elsewhere."""
    pairs = list(pairs)
    if not pairs:
        return 0
    fields = _actor_fields(actor, job)
    tag_field = "personal_tag_id" if personal else "tag_id"
    if connection.vendor == "postgresql" and len(pairs) > 100:
        employee_id = fields["actor_employee"].pk if fields["actor_employee"] else None
        client_id = fields["actor_client"].pk if fields["actor_client"] else None
        job_id = job.pk if job else None
        columns = ["customer_id", tag_field, "tag_name", "action", "source", "actor_employee_id", "actor_client_id",
                   "actor_label", "job_id", "created_at"]
        sql = f"COPY {TagEvent._meta.db_table} ({', '.join(columns)}) FROM STDIN"
        with connection.cursor() as cursor, cursor.copy(sql) as copy:
            for customer_id, tag_id in pairs:
                copy.write_row((customer_id, tag_id, names.get(tag_id, "")[:64], action, source, employee_id,
                                client_id, fields["actor_label"], job_id, now))
        return len(pairs)
    events = [
        TagEvent(
            customer_id=customer_id,
            tag_name=names.get(tag_id, "")[:64],
            action=action,
            source=source,
            created_at=now,
            **{tag_field: tag_id},
            **fields,
        )
        for customer_id, tag_id in pairs
    ]
    TagEvent.objects.bulk_create(events, batch_size=5000)
    return len(events)


def _lock_customers(customer_ids: Iterable[int]) -> None:
    """Take the row locks of the customers a change touches, in id order, before reading or writing
    their taggings: two writers on one customer then run one after the other, so a single-choice
    group never ends with two tags (each sees the other's committed siblings), and the fixed order
    cannot deadlock. (SQLite has one writer at a time anyway.)"""
    if connection.vendor != "postgresql":
        return
    ids = sorted(set(customer_ids))
    with connection.cursor() as cursor:
        for chunk in _chunks(ids, _in_chunk_size()):
            cursor.execute(
                f"SELECT id FROM {Customer._meta.db_table} WHERE id = ANY(%s::bigint[]) ORDER BY id FOR UPDATE",
                [_pg_ids(chunk)],
            )


def _touch(customer_ids: Iterable[int], now) -> None:
    ids = sorted(set(customer_ids))
    for chunk in _chunks(ids, _in_chunk_size()):
        if connection.vendor == "postgresql":  # one array parameter, not thousands
            with connection.cursor() as cursor:
                cursor.execute(
                    f"UPDATE {Customer._meta.db_table} SET updated_at = %s WHERE id = ANY(%s::bigint[])",
                    [now, _pg_ids(chunk)],
                )
        else:
            Customer.objects.filter(pk__in=chunk).update(updated_at=now)


def _apply(
    *,
    actor: Actor,
    taxonomy: _Taxonomy,
    adds: Mapping[int, set[int]],
    removes: Mapping[int, set[int]],
    source: str,
    job: Job | None,
    lock: bool = True,
    touch: bool = True,
) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """Write validated changes: {tag_id: customer ids} to add and to remove. Returns (added, removed) pairs.
    `lock=False` / `touch=False`: the caller took the customers' locks / touches them itself."""
    now = timezone.now()
    if lock:
        _lock_customers(set().union(*adds.values(), *removes.values()))
    # PostgreSQL: each statement audits its own changes (removals first, then additions).
    audit = _SqlAudit(actor=actor, source=source, job=job, now=now) if connection.vendor == "postgresql" else None
    removed = _delete_siblings(adds, taxonomy, audit)
    removed += _delete_taggings(removes, audit)
    added = _insert_taggings(adds, now, audit)
    if audit is None:
        names = taxonomy.names({t for _c, t in added} | {t for _c, t in removed})
        _audit(removed, TagAction.REMOVE, actor=actor, source=source, job=job, now=now, names=names)
        _audit(added, TagAction.ADD, actor=actor, source=source, job=job, now=now, names=names)
    if touch:
        _touch({c for c, _t in added} | {c for c, _t in removed}, now)
    return added, removed


# ---------------------------------------------------------------- one customer


def _reachable_customer(actor: Actor, customer: Customer | int, *, lock: bool = True) -> Customer:
    """The customer if the actor may see it (locked for update: one writer per customer), else 404."""
    pk = customer.pk if isinstance(customer, Customer) else customer
    qs = visible_customers(actor.employee).filter(pk=pk)
    if lock:
        # Lock only the customer row: the visibility EXISTS would otherwise make FOR UPDATE heavier.
        if not qs.exists():
            raise NotFound(_("客户不存在或不可见。"), details={"customer": pk})
        found = Customer.objects.select_for_update().filter(pk=pk).first()
    else:
        found = qs.first()
    if found is None:
        raise NotFound(_("客户不存在或不可见。"), details={"customer": pk})
    return found


def _follows(employee: Employee, customer_id: int) -> bool:
    return FollowRelation.objects.filter(
        employee=employee, customer_id=customer_id, status=RelationStatus.ACTIVE
    ).exists()


def _personal_tags(actor: Actor, ids: set[int]) -> dict[int, PersonalTag]:
    """The actor's own personal tags among `ids`; anyone else's is unknown (400)."""
    if not ids:
        return {}
    if actor.employee is None:
        raise ValidationFailed(
            _("个人标签需要指定成员 (employee)。"), details={"personal_tags": sorted(ids)}, code="unknown_personal_tags"
        )
    own = {p.pk: p for p in PersonalTag.objects.filter(owner=actor.employee, pk__in=ids)}
    unknown = sorted(ids - set(own))
    if unknown:
        raise ValidationFailed(
            _("未知或不属于你的个人标签：%(ids)s") % {"ids": ", ".join(map(str, unknown))},
            details={"personal_tags": unknown},
            code="unknown_personal_tags",
        )
    return own


@transaction.atomic
def customer_tags_update(
    *,
    actor: Actor,
    customer: Customer | int,
    add: Iterable[int | Tag] = (),
    remove: Iterable[int | Tag] = (),
    personal_add: Iterable[int | PersonalTag] = (),
    personal_remove: Iterable[int | PersonalTag] = (),
    source: str,
    job: Job | None = None,
) -> TagChange:
    """给客户打标签 / 移除标签: the one audited tagging service for one customer (see module docstring).

    Raises NotFound (customer out of reach), NotAllowed (locked tags, read-only key, departed
    actor), ValidationFailed (unknown/invisible tags, two tags of a single-choice group, personal
    tags not the actor's or on a customer they do not follow). Nothing is written on error.
    """
    _check_source(source)
    _check_actor_can_write(actor)
    _check_may_change_customers(actor, source)
    add_ids, remove_ids = set(_as_ids(add, "add")), set(_as_ids(remove, "remove"))
    padd_ids, premove_ids = set(_as_ids(personal_add, "personal_add")), set(_as_ids(personal_remove, "personal_remove"))
    customer = _reachable_customer(actor, customer)

    change = TagChange()
    if add_ids or remove_ids:
        taxonomy = _Taxonomy(add_ids | remove_ids)
        visible = _visible_tag_ids(actor, add_ids | remove_ids)
        errors = _item_errors(actor, add_ids, remove_ids, taxonomy, visible, source)
        if errors:
            first = errors[0]
            details = {"customer": customer.pk, "errors": errors, "tags": first["tags"]}
            error_class = NotAllowed if all(e["code"] == "locked" for e in errors) else ValidationFailed
            raise error_class(f"{first['message']}: {', '.join(map(str, first['tags']))}", details=details,
                              code=first["code"])
        added, removed = _apply(
            actor=actor,
            taxonomy=taxonomy,
            adds={t: {customer.pk} for t in add_ids},
            removes={t: {customer.pk} for t in remove_ids},
            source=source,
            job=job,
        )
        change.added = [taxonomy.tags[t] for _c, t in added]
        change.removed = [taxonomy.tags.get(t) or Tag.objects.get(pk=t) for _c, t in removed]

    if padd_ids or premove_ids:
        both = sorted(padd_ids & premove_ids)
        if both:
            raise ValidationFailed(
                _("同一标签不能同时添加和移除"), details={"personal_tags": both}, code="add_and_remove"
            )
        own = _personal_tags(actor, padd_ids | premove_ids)
        if padd_ids and not _follows(actor.employee, customer.pk):
            raise ValidationFailed(
                _("只能给自己跟进的客户打个人标签。"),
                details={"customer": customer.pk, "personal_tags": sorted(padd_ids)},
                code="not_follower",
            )
        change.personal_added, change.personal_removed = _apply_personal(
            actor=actor, customer=customer, add=[own[i] for i in padd_ids], remove=[own[i] for i in premove_ids],
            source=source, job=job,
        )
    return change


def _apply_personal(*, actor, customer, add, remove, source, job) -> tuple[list[PersonalTag], list[PersonalTag]]:
    now = timezone.now()
    existing = set(
        PersonalTagging.objects.filter(customer=customer, personal_tag__in=[*add, *remove]).values_list(
            "personal_tag_id", flat=True
        )
    )
    to_add = [p for p in add if p.pk not in existing]
    to_remove = [p for p in remove if p.pk in existing]
    PersonalTagging.objects.bulk_create(
        [PersonalTagging(customer=customer, personal_tag=p, created_at=now) for p in to_add], ignore_conflicts=True
    )
    if to_remove:
        PersonalTagging.objects.filter(customer=customer, personal_tag__in=to_remove).delete()
    names = {p.pk: p.name for p in [*to_add, *to_remove]}
    _audit([(customer.pk, p.pk) for p in to_remove], TagAction.REMOVE, actor=actor, source=source, job=job,
           now=now, names=names, personal=True)
    _audit([(customer.pk, p.pk) for p in to_add], TagAction.ADD, actor=actor, source=source, job=job,
           now=now, names=names, personal=True)
    if to_add or to_remove:
        _touch([customer.pk], now)
    return to_add, to_remove


@transaction.atomic
def customer_tags_replace(
    *,
    actor: Actor,
    customer: Customer | int,
    tag_ids: Iterable[int] | None,
    personal_tag_ids: Iterable[int] | None,
    source: str,
    job: Job | None = None,
) -> TagChange:
    """The portrait form (编辑客户标签): make the customer's tags *that the actor sees* equal `tag_ids`.

    Rule 8: tags hidden from the actor are kept untouched. Tags of locked groups the actor may not
    change are kept as they are too (a form shows them greyed and disabled, so they are not
    submitted); asking to add one is still refused. `None` leaves that kind of tag alone.
    Personal tags: only the actor's own are replaced.
    """
    _check_actor_can_write(actor)
    _check_may_change_customers(actor, source)
    customer = _reachable_customer(actor, customer)
    add: set[int] = set()
    remove: set[int] = set()
    if tag_ids is not None:
        wanted = set(_as_ids(tag_ids, "tags"))
        current = set(Tagging.objects.filter(customer=customer).values_list("tag_id", flat=True))
        visible_current = _visible_tag_ids(actor, current)
        if not can_change_locked(actor):
            taxonomy = _Taxonomy(visible_current)
            visible_current -= {t for t in visible_current if taxonomy.locked(t)}
            wanted -= current - visible_current  # a locked tag the customer has stays, asked or not
        add = wanted - current
        remove = visible_current - wanted
    padd: set[int] = set()
    premove: set[int] = set()
    if personal_tag_ids is not None:
        wanted_p = set(_as_ids(personal_tag_ids, "personal_tags"))
        current_p = set()
        if actor.employee is not None:
            current_p = set(
                PersonalTagging.objects.filter(customer=customer, personal_tag__owner=actor.employee).values_list(
                    "personal_tag_id", flat=True
                )
            )
        padd, premove = wanted_p - current_p, current_p - wanted_p
    return customer_tags_update(
        actor=actor, customer=customer, add=add, remove=remove, personal_add=padd, personal_remove=premove,
        source=source, job=job,
    )


# ---------------------------------------------------------------- many customers


def _reachable_ids(actor: Actor, customer_ids: Iterable[Any]) -> set[int]:
    """Which of these customer ids the actor may change (`visible_customers`), in one query per 20,000."""
    ids = sorted({c for c in customer_ids if is_id(c)})
    reachable: set[int] = set()
    base = visible_customers(actor.employee)
    for chunk in _chunks(ids, _in_chunk_size()):
        if connection.vendor == "postgresql":  # one array parameter, not thousands
            found = base.filter(pk__in=RawSQL("SELECT unnest(%s::bigint[])", [_pg_ids(chunk)]))
        else:
            found = base.filter(pk__in=chunk)
        reachable.update(found.values_list("pk", flat=True))
    return reachable


@transaction.atomic
def customers_tags_bulk_update(
    *, actor: Actor, operations: Sequence[TagOperation], source: str, job: Job | None = None
) -> BulkResult:
    """批量打标签: apply many (customer, add, remove) operations at once, set-based.

    Everything is validated first; any bad operation rejects the call with ValidationFailed whose
    details list each bad item (`{"index", "customer", "errors"}`) and nothing is written. Then
    a few statements per distinct tag write the lot, whatever the number of customers.
    Operations on the same customer are merged. `unchanged` counts requested adds already present
    and removes already absent.
    """
    _check_source(source)
    _check_actor_can_write(actor)
    _check_may_change_customers(actor, source)
    ops = list(operations)
    all_tags: set[int] = set()
    parsed: list[tuple[int, set[int], set[int]]] = []
    item_errors: dict[int, list[dict]] = defaultdict(list)
    # Parsed once per distinct (add, remove): an API call or a job chunk repeats a few shapes.
    shapes: dict[Any, tuple[set[int], set[int], dict | None]] = {}
    for index, op in enumerate(ops):
        try:  # the types too: True == 1 and 1.0 == 1, but neither is a tag id
            key = (op.add, op.remove, tuple(map(type, op.add)), tuple(map(type, op.remove)))
            shape = shapes.get(key)
        except TypeError:  # unhashable (lists) or not iterable: parsed each time
            key, shape = None, None
        if shape is None:
            try:
                shape = (set(_as_ids(op.add, "add")), set(_as_ids(op.remove, "remove")), None)
            except ValidationFailed as exc:
                shape = (set(), set(), {"code": "invalid", "message": exc.message, **(exc.details or {})})
            all_tags |= shape[0] | shape[1]
            if key is not None:
                shapes[key] = shape
        add, remove, error = shape
        if error is not None:
            item_errors[index].append(dict(error))
        parsed.append((op.customer_id, add, remove))

    reachable = _reachable_ids(actor, [c for c, _a, _r in parsed])
    taxonomy = _Taxonomy(all_tags)
    visible = _visible_tag_ids(actor, all_tags)

    # Rule checks per distinct (add, remove) shape: a chunk of a filter job has one shape for all.
    checked: dict[tuple[frozenset, frozenset], list[dict]] = {}

    def check(add: set[int], remove: set[int]) -> list[dict]:
        key = (frozenset(add), frozenset(remove))
        if key not in checked:
            checked[key] = _item_errors(actor, add, remove, taxonomy, visible, source)
        return checked[key]

    # Each customer's change: the (add, remove) sets of its operation's shape, shared by every
    # operation of that shape (so shapes are told apart by identity: the sets stay alive in
    # `parsed` and `wanted`); a customer named again gets merged copies.
    wanted: dict[int, tuple[set[int], set[int]]] = {}
    repeated: dict[int, list[int]] = {}
    checked_shapes: dict[tuple[int, int], list[dict]] = {}
    for index, (customer_id, add, remove) in enumerate(parsed):
        if customer_id not in reachable:
            item_errors[index].append(
                {"code": "not_found", "message": _("客户不存在或不可见"), "customer": customer_id}
            )
            continue
        shape_key = (id(add), id(remove))
        errors = checked_shapes.get(shape_key)
        if errors is None:
            errors = checked_shapes[shape_key] = check(add, remove)
        if errors:
            item_errors[index].extend(errors)
        before = wanted.get(customer_id)
        if before is None:
            wanted[customer_id] = (add, remove)
            repeated[customer_id] = [index]
        else:
            wanted[customer_id] = (before[0] | add, before[1] | remove)
            repeated[customer_id].append(index)
    # Several operations on one customer are merged; a clash between them is the last one's fault.
    for customer_id, where in repeated.items():
        if len(where) > 1 and not any(item_errors.get(i) for i in where):
            errors = check(*wanted[customer_id])
            if errors:
                item_errors[where[-1]].extend(errors)
    item_errors = {i: errs for i, errs in item_errors.items() if errs}
    if item_errors:
        details = [
            {"index": i, "customer": ops[i].customer_id, "errors": errs} for i, errs in sorted(item_errors.items())
        ]
        raise ValidationFailed(
            _("%(n)d 项操作无效，未做任何修改。") % {"n": len(details)}, details=details, code="invalid_items"
        )

    # {tag: customers} from the customers grouped by their change (no loop over every pair).
    by_shape: dict[tuple[int, int], tuple[set[int], set[int], list[int]]] = {}
    for customer_id, (add, remove) in wanted.items():
        group = by_shape.get((id(add), id(remove)))
        if group is None:
            group = by_shape[(id(add), id(remove))] = (add, remove, [])
        group[2].append(customer_id)
    adds: dict[int, set[int]] = defaultdict(set)
    removes: dict[int, set[int]] = defaultdict(set)
    requested = 0
    for add, remove, customer_ids in by_shape.values():
        for tag_id in add:
            adds[tag_id].update(customer_ids)
        for tag_id in remove:
            removes[tag_id].update(customer_ids)
        requested += len(customer_ids) * (len(add) + len(remove))
    added, removed = _apply(actor=actor, taxonomy=taxonomy, adds=adds, removes=removes, source=source, job=job)
    explicit_removed = sum(1 for c, t in removed if c in removes.get(t, ()))
    return BulkResult(added=len(added), removed=len(removed), unchanged=requested - len(added) - explicit_removed)


@transaction.atomic
def customers_tags_bulk_apply(
    *,
    actor: Actor,
    customer_ids: Sequence[int],
    add: Iterable[int] = (),
    remove: Iterable[int] = (),
    source: str,
    job: Job | None = None,
) -> tuple[BulkResult, list[int]]:
    """The same change for many customers (a filter job's chunk): `customers_tags_bulk_update` with
    one operation per customer, without building them. The change is checked once (scope, locked,
    single-choice, HR; ValidationFailed or NotAllowed, nothing written); customers the actor cannot
    reach are left alone and returned as the second value; the others are written set-based."""
    _check_source(source)
    _check_actor_can_write(actor)
    _check_may_change_customers(actor, source)
    add_ids, remove_ids = set(_as_ids(add, "add")), set(_as_ids(remove, "remove"))
    taxonomy = _Taxonomy(add_ids | remove_ids)
    visible = _visible_tag_ids(actor, add_ids | remove_ids)
    errors = _item_errors(actor, add_ids, remove_ids, taxonomy, visible, source)
    if errors:
        raise ValidationFailed(errors[0]["message"], details=errors, code=errors[0]["code"])
    reachable = _reachable_ids(actor, customer_ids)
    missing = list(dict.fromkeys(c for c in customer_ids if c not in reachable))
    if not reachable or not (add_ids or remove_ids):
        return BulkResult(), missing
    added, removed = _apply(
        actor=actor, taxonomy=taxonomy, adds=dict.fromkeys(add_ids, reachable),
        removes=dict.fromkeys(remove_ids, reachable), source=source, job=job,
    )
    explicit_removed = sum(1 for _c, t in removed if t in remove_ids)
    requested = len(reachable) * (len(add_ids) + len(remove_ids))
    unchanged = requested - len(added) - explicit_removed
    return BulkResult(added=len(added), removed=len(removed), unchanged=unchanged), missing


@transaction.atomic
def customers_tags_add_by_actors(
    *, changes: Sequence[tuple[Actor, Sequence[int], Iterable[int]]], source: str, job: Job | None = None
) -> list[list[tuple[int, int]]]:
    """Automation adding tags for several actors at once (keyword rules: one actor per rule, naming it
    in the audit): each change is `(actor, customer_ids, tag ids to add)`, checked as
    `customers_tags_bulk_apply` checks one (scope, locked groups, single-choice, HR; ValidationFailed
    or NotAllowed naming the change's `index`, nothing written). Customers out of an actor's reach are
    left alone. The customers are locked once, in id order; each change is then one audited statement
    (plus its single-choice siblings' removal). Returns, per change, the (customer_id, tag_id) pairs
    it added (tags already there are not)."""
    _check_source(source)
    parsed = []
    all_tags: set[int] = set()
    for actor, customer_ids, add in changes:
        _check_actor_can_write(actor)
        _check_may_change_customers(actor, source)
        add_ids = set(_as_ids(add, "add"))
        all_tags |= add_ids
        parsed.append((actor, customer_ids, add_ids))
    taxonomy = _Taxonomy(all_tags)
    visible: dict[Any, set[int]] = {}
    reachable: dict[Any, set[int]] = {}
    work = []
    for index, (actor, customer_ids, add_ids) in enumerate(parsed):
        key = actor.employee.pk if actor.employee else None
        if key not in visible:
            visible[key] = _visible_tag_ids(actor, all_tags)
        errors = _item_errors(actor, add_ids, set(), taxonomy, visible[key], source)
        if errors:
            raise ValidationFailed(errors[0]["message"], details={"index": index, "errors": errors},
                                   code=errors[0]["code"])
        if key not in reachable:
            every = {c for _a, ids, _t in parsed for c in ids}
            reachable[key] = _reachable_ids(actor, every)
        ids = [c for c in customer_ids if c in reachable[key]]
        work.append((actor, ids, add_ids))
    _lock_customers({c for _a, ids, _t in work for c in ids})
    now = timezone.now()
    labels = [actor.label for actor, _ids, _t in work]
    if (connection.vendor == "postgresql" and all(a.employee is None and a.api_client is None for a, _i, _t in work)
            and len(set(labels)) == len(labels) and all(labels)):
        return _add_by_labels(work, taxonomy, source=source, job=job, now=now)
    results: list[list[tuple[int, int]]] = []
    touched: set[int] = set()
    for actor, ids, add_ids in work:
        if not ids or not add_ids:
            results.append([])
            continue
        added, removed = _apply(actor=actor, taxonomy=taxonomy, adds=dict.fromkeys(add_ids, set(ids)), removes={},
                                source=source, job=job, lock=False, touch=False)
        touched.update(c for c, _t in added)
        touched.update(c for c, _t in removed)
        results.append(added)
    _touch(touched, now)
    return results


def _add_by_labels(work, taxonomy: _Taxonomy, *, source: str, job: Job | None, now) -> list[list[tuple[int, int]]]:
    """`customers_tags_add_by_actors` for automation actors told apart by their labels (PostgreSQL):
    single-choice siblings removed per change (audited with its label), then every change's taggings
    inserted by one statement whose audit rows carry each pair's label. Returns, per change, the pairs
    it added (a pair two changes both ask for is credited to one of them)."""
    removed: list[tuple[int, int]] = []
    for actor, ids, add_ids in work:
        if ids and any(taxonomy.single_choice_group(t) is not None for t in add_ids):
            audit = _SqlAudit(actor=actor, source=source, job=job, now=now)
            removed += _delete_siblings(dict.fromkeys(add_ids, set(ids)), taxonomy, audit)
    index_of = {actor.label[:100]: i for i, (actor, _ids, _t) in enumerate(work)}
    rows = sorted({(c, t, actor.label[:100]) for actor, ids, add_ids in work for t in add_ids for c in ids},
                  key=lambda r: (r[1], r[0], r[2]))
    results: list[list[tuple[int, int]]] = [[] for _ in work]
    event, tag, tagging = TagEvent._meta.db_table, Tag._meta.db_table, Tagging._meta.db_table
    with connection.cursor() as cursor:
        for chunk in _chunks(rows, 50_000):
            cursor.execute(
                "WITH wanted AS (SELECT DISTINCT ON (t, c) c, t, label "
                "FROM unnest(%s::bigint[], %s::bigint[], %s::text[]) AS w(c, t, label) ORDER BY t, c, label), "
                f"changed AS (INSERT INTO {tagging} (customer_id, tag_id, created_at) "
                "SELECT c, t, %s FROM wanted ON CONFLICT (tag_id, customer_id) DO NOTHING "
                "RETURNING customer_id, tag_id) "
                f"INSERT INTO {event} (customer_id, tag_id, tag_name, action, source, actor_employee_id, "
                "actor_client_id, actor_label, job_id, created_at) "
                "SELECT changed.customer_id, changed.tag_id, COALESCE(left(tag.name, 64), ''), %s, %s, NULL, NULL, "
                "wanted.label, %s::bigint, %s FROM changed "
                "JOIN wanted ON wanted.c = changed.customer_id AND wanted.t = changed.tag_id "
                f"LEFT JOIN {tag} tag ON tag.id = changed.tag_id RETURNING customer_id, tag_id, actor_label",
                [_pg_ids(r[0] for r in chunk), _pg_ids(r[1] for r in chunk), [r[2] for r in chunk], now,
                 TagAction.ADD, source, job.pk if job else None, now],
            )
            for customer_id, tag_id, label in cursor.fetchall():
                results[index_of[label]].append((customer_id, tag_id))
    _touch({c for added in results for c, _t in added} | {c for c, _t in removed}, now)
    return results
