"""Customers and their follow relations from outside (CRM upserts, WeCom), and notes."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _

from org.actors import Actor
from org.models import Employee, Role
from tagportal.errors import NotFound, ValidationFailed

from ..hooks import run_relation_added_handlers
from ..models import Customer, FollowRelation, Note, RelationStatus
from ..selectors import sees_all_customers, visible_customers
from .tagging import _check_actor_can_write, _check_may_change_customers, _has_nul, _reachable_customer

EXTERNAL_USERID_RE = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
CUSTOMER_FIELDS = ("name", "corp_name", "type", "gender", "avatar", "crm_fields")
FOLLOWER_FIELDS = ("remark", "description", "added_at", "add_way", "state")


def _may_name_follower(actor: Actor, employee: Employee) -> bool:
    """Who an actor may attach customers to: anyone (admins, HR, enterprise level), members of the
    departments a manager manages, or oneself."""
    me = actor.employee
    if sees_all_customers(me) or employee.pk == me.pk:
        return True
    if me.has_role(Role.MANAGER):
        return employee.departments.filter(pk__in=me.managed_departments.values("pk")).exists()
    return False


def _clean_followers(actor: Actor, raw: Any) -> list[tuple[Employee, dict]]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ValidationFailed(_("followers 必须是列表。"), details={"followers": "expected a list"})
    userids, errors = [], {}
    for i, item in enumerate(raw):
        if not isinstance(item, Mapping) or not isinstance(item.get("employee"), str) or not item["employee"]:
            errors[i] = _("每个跟进人需要 employee (userid)。")
            continue
        userids.append(item["employee"])
    employees = {e.userid: e for e in Employee.objects.filter(userid__in=userids)}
    out = []
    for i, item in enumerate(raw):
        if i in errors:
            continue
        employee = employees.get(item["employee"])
        if employee is None:
            errors[i] = _("未知成员：%(u)s") % {"u": item["employee"]}
            continue
        if employee.is_departed:
            errors[i] = _("成员已离职：%(u)s") % {"u": item["employee"]}
            continue
        if not _may_name_follower(actor, employee):
            errors[i] = _("无权为该成员添加客户：%(u)s") % {"u": item["employee"]}
            continue
        values = {}
        for key in FOLLOWER_FIELDS:
            if key not in item:
                continue
            value = item[key]
            if key == "added_at":
                try:
                    parsed = parse_datetime(value) if isinstance(value, str) else None
                except ValueError:  # well formed but impossible, e.g. "2024-13-45T00:00:00"
                    parsed = None
                if parsed is None:
                    errors[i] = _("added_at 不是有效时间：%(v)s") % {"v": value}
                    break
                value = parsed if timezone.is_aware(parsed) else timezone.make_aware(parsed)
            elif key == "add_way":
                if not isinstance(value, int) or isinstance(value, bool):
                    errors[i] = _("add_way 必须是整数。")
                    break
            elif not isinstance(value, str):
                errors[i] = _("%(k)s 必须是字符串。") % {"k": key}
                break
            values[key] = value
        else:
            out.append((employee, values))
    if errors:
        first = next(iter(errors.values()))
        raise ValidationFailed(_("跟进人无效：%(e)s") % {"e": first}, details={"followers": errors})
    return out


@transaction.atomic
def customer_upsert(*, actor: Actor, data: Mapping[str, Any]) -> tuple[Customer, bool]:
    """CRM 同步: create the customer with `data["external_userid"]` or update the one that exists,
    with the followers named (`[{"employee": userid, "remark", "description", "added_at", "add_way",
    "state"}]`; followers not named are left alone). Returns (customer, created).

    An existing customer the actor cannot see is 404, as everywhere.
    """
    _check_actor_can_write(actor)
    if not isinstance(data, Mapping):
        raise ValidationFailed(_("请求体必须是对象。"))
    with_nul = sorted(str(k) for k, v in data.items() if _has_nul(k) or _has_nul(v))
    if with_nul:
        raise ValidationFailed(
            _("%(k)s 不能包含 NUL 字符。") % {"k": "、".join(with_nul)}, details={k: "NUL character" for k in with_nul}
        )
    external_userid = data.get("external_userid")
    if not isinstance(external_userid, str) or not EXTERNAL_USERID_RE.match(external_userid):
        raise ValidationFailed(
            _("external_userid 缺失或格式错误（1–64 位字母、数字、- 或 _）。"),
            details={"external_userid": external_userid},
        )
    followers = _clean_followers(actor, data.get("followers"))
    if "crm_fields" in data and not isinstance(data["crm_fields"], Mapping):
        raise ValidationFailed(_("crm_fields 必须是对象。"), details={"crm_fields": data["crm_fields"]})
    for key in ("name", "corp_name", "avatar"):
        if key in data and not isinstance(data[key], str):
            raise ValidationFailed(_("%(k)s 必须是字符串。") % {"k": key}, details={key: data[key]})

    customer = Customer.objects.select_for_update().filter(external_userid=external_userid).first()
    created = customer is None
    if created:
        if not sees_all_customers(actor.employee) and not followers:
            raise ValidationFailed(
                _("新客户需要至少一个跟进人，否则你将无法看到它。"), details={"followers": "required"}
            )
        customer = Customer(external_userid=external_userid)
    elif not visible_customers(actor.employee).filter(pk=customer.pk).exists():
        raise NotFound(_("客户不存在或不可见。"), details={"external_userid": external_userid})

    for key in CUSTOMER_FIELDS:
        if key in data:
            setattr(customer, key, data[key])
    if created and not data.get("name"):
        customer.name = external_userid
    customer.updated_at = timezone.now()
    try:
        customer.full_clean()
    except DjangoValidationError as exc:
        raise ValidationFailed(_("客户数据无效。"), details=exc.message_dict) from exc
    customer.save()

    if followers:
        existing = {r.employee_id: r for r in FollowRelation.objects.filter(customer=customer)}
        for employee, values in followers:
            relation = existing.get(employee.pk) or FollowRelation(customer=customer, employee=employee)
            is_new_add = relation.pk is None or relation.status != RelationStatus.ACTIVE
            for key, value in values.items():
                setattr(relation, key, value)
            relation.status = RelationStatus.ACTIVE
            relation.ended_at = None
            try:
                relation.full_clean(exclude=["customer", "employee", "transferred_to"])
            except DjangoValidationError as exc:
                raise ValidationFailed(
                    _("跟进人数据无效。"), details={"followers": {employee.userid: exc.message_dict}}
                ) from exc
            relation.save()
            if is_new_add:
                run_relation_added_handlers(actor=actor, relation=relation)
    return customer, created


ENDED_STATUSES = (RelationStatus.DELETED, RelationStatus.LOST)


@transaction.atomic
def follow_relation_end(
    *,
    actor: Actor,
    customer: Customer | int | str,
    employee: Employee | str,
    status: str,
    ended_at=None,
) -> FollowRelation | None:
    """跟进关系结束: the employee deleted the customer (`deleted`, WeCom del_external_contact) or the
    customer deleted the employee (`lost`, del_follow_user). The relation stays as history with
    `ended_at` set; enterprise tags, notes and chat stay with the customer.

    `customer` may be the model, its id or its external_userid; `employee` the model or a userid;
    `ended_at` defaults to now (WeCom passes the event's CreateTime).
    Returns the relation, or None when there is none (nothing to end). Ending an ended relation
    changes nothing; a transferred relation is the old employee's archive and is left alone.
    """
    _check_actor_can_write(actor)
    if status not in ENDED_STATUSES:
        raise ValidationFailed(
            _("结束状态必须是 deleted 或 lost。"), details={"status": status}
        )
    if isinstance(employee, str):
        employee = Employee.objects.filter(userid=employee).first()
        if employee is None:
            return None
    if isinstance(customer, str):
        lookup = {"customer__external_userid": customer}
    else:
        lookup = {"customer_id": customer.pk if isinstance(customer, Customer) else customer}
    relation = (
        FollowRelation.objects.select_for_update().filter(employee=employee, **lookup).first()
    )
    if relation is None:
        return None
    if relation.status != RelationStatus.ACTIVE:
        return relation
    relation.status = status
    relation.ended_at = ended_at or timezone.now()
    relation.save(update_fields=["status", "ended_at"])
    Customer.objects.filter(pk=relation.customer_id).update(updated_at=timezone.now())
    return relation


NOTE_MAX_LENGTH = 5000


@transaction.atomic
def follow_relation_default_remark(*, relation: FollowRelation, remark: str) -> bool:
    """Give a relation that has no remark yet a default one (a channel code's `remark_template`, rendered).
    A remark the employee or WeCom already set is never overwritten. Returns whether it was set."""
    remark = (remark or "")[: FollowRelation._meta.get_field("remark").max_length]
    if not remark:
        return False
    updated = FollowRelation.objects.filter(pk=relation.pk, remark="").update(remark=remark)
    if updated:
        relation.remark = remark
    return bool(updated)


@transaction.atomic
def note_create(*, actor: Actor, customer: Customer | int, text: str) -> Note:
    """添加跟进记录: a note on a customer the actor sees, by the acting employee."""
    _check_actor_can_write(actor)
    _check_may_change_customers(actor)
    if actor.employee is None:
        raise ValidationFailed(_("跟进记录需要指定成员 (employee)。"), details={"employee": "required"})
    text = (text or "").strip() if isinstance(text, str) or text is None else None
    if not text:
        raise ValidationFailed(_("内容不能为空。"), details={"text": "required"})
    if "\x00" in text:
        raise ValidationFailed(_("内容不能包含 NUL 字符。"), details={"text": "NUL character"})
    if len(text) > NOTE_MAX_LENGTH:
        raise ValidationFailed(
            _("内容不能超过 %(n)d 个字符。") % {"n": NOTE_MAX_LENGTH}, details={"text": "too long"}
        )
    customer = _reachable_customer(actor, customer, lock=False)
    return Note.objects.create(customer=customer, author=actor.employee, text=text)
