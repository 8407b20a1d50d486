"""Writes of channel codes (渠道活码): create, update, delete, WeCom's contact way on a code, the
trigger that tags every customer who adds through a code, and the receivers' refresh.

The trigger (`channel_add_record`) is the one place a code's tags reach customers: registered on
`customers.hooks.register_relation_added_handler`, it runs inside `customer_upsert`'s transaction for
every new or returning follow relation (from `POST customers/`, the admin, the landing page or WeCom's
`add_external_contact`), and puts the code's tags on through the one tagging service (source
`channel`, actor the code), so locked groups do not stop it (automation, rule 6) and single-choice
groups keep one tag (siblings removed, audited; rule 7).
"""

from __future__ import annotations

import re
import secrets
import string
from collections.abc import Iterable, Mapping
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from customers.models import FollowRelation, TagSource
from customers.services import customer_tags_update, customer_upsert, follow_relation_default_remark
from org.actors import Actor
from org.models import Department, Employee, EmployeeStatus
from tagportal.errors import Conflict, NotAllowed, NotFound, ValidationFailed
from tags.models import Tag, TagGroup

from .hooks import run_code_deleted_handlers, run_code_saved_handlers, run_receivers_changed_handlers
from .models import NAME_MAX_LENGTH, STATE_MAX_LENGTH, ChannelAdd, ChannelCode, Rotation
from .selectors import (
    codes_for,
    managed_department_ids,
    manages_all_codes,
    may_manage_codes,
    reachable_employee_ids,
    receivers_now,
    shanghai_day,
    usable_tags,
)

STATE_RE = re.compile(rf"^[A-Za-z0-9_-]{{1,{STATE_MAX_LENGTH}}}$")
HM_RE = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$|^24:00$")
DAILY_LIMIT_MAX = 100_000
REMARK_FIELDS = {"channel", "name", "employee"}
REMARK_MAX_LENGTH = 64
TEXT_MAX_LENGTH = 4000
FIELDS = ("name", "state", "employees", "backup_employees", "daily_limit", "rotation", "working_hours", "tags",
          "remark_template", "description", "welcome_message", "skip_verify", "enabled", "department")


# ---------------------------------------------------------------- validation


class _Errors(dict):
    """Field → message; raised as one 400 naming every bad field (the first one in the message)."""

    def raise_if_any(self) -> None:
        if self:
            key = next(iter(self))
            raise ValidationFailed(f"{key}: {self[key]['message']}", details=dict(self))

    def add(self, key: str, message: str, value: Any = None) -> None:
        self.setdefault(key, {"message": message, "value": value})


def _check_writer(actor: Actor) -> None:
    if not actor.can_write:
        raise NotAllowed(_("只读密钥不能写入。"), code="read_only")
    employee = actor.employee
    if employee is not None and (employee.status == EmployeeStatus.DEPARTED or not employee.is_active):
        raise NotAllowed(_("离职成员不能再操作。"), code="departed")
    if not may_manage_codes(actor):
        raise NotAllowed(_("只有企业管理员、标签管理员和销售经理可以管理渠道活码。"), code="forbidden")


def generate_state() -> str:
    """A fresh state nobody uses: "ch" + 10 lowercase letters and digits (WeCom allows 30)."""
    alphabet = string.ascii_lowercase + string.digits
    while True:
        state = "ch" + "".join(secrets.choice(alphabet) for _i in range(10))
        if not ChannelCode.objects.filter(state=state).exists():
            return state


def _text(errors: _Errors, data: Mapping, key: str, max_length: int, *, required: bool = False) -> str | None:
    if key not in data:
        return None
    value = data[key]
    if value is None and not required:
        value = ""
    if not isinstance(value, str):
        errors.add(key, _("必须是字符串。"), value)
        return None
    value = value.strip()
    if "\x00" in value:
        errors.add(key, _("不能包含 NUL 字符。"), value)
    elif required and not value:
        errors.add(key, _("不能为空。"), value)
    elif len(value) > max_length:
        errors.add(key, _("最多 %(n)s 个字符（现在 %(m)s 个）。") % {"n": max_length, "m": len(value)}, value)
    else:
        return value
    return None


def _bool(errors: _Errors, data: Mapping, key: str) -> bool | None:
    if key not in data:
        return None
    value = data[key]
    if not isinstance(value, bool):
        errors.add(key, _("必须是 true 或 false。"), value)
        return None
    return value


def _employees(errors: _Errors, actor: Actor, data: Mapping, key: str, *, required: bool) -> list[Employee] | None:
    """Userids (or Employee objects) → active employees the actor may put on a code."""
    if key not in data:
        return None
    raw = data[key]
    if raw is None:
        raw = []
    if not isinstance(raw, list | tuple):
        errors.add(key, _("必须是成员 userid 列表。"), raw)
        return None
    userids = []
    for item in raw:
        if isinstance(item, Employee):
            userids.append(item.userid)
        elif isinstance(item, str) and item and "\x00" not in item:
            userids.append(item)
        else:
            errors.add(key, _("必须是成员 userid 列表。"), raw)
            return None
    userids = list(dict.fromkeys(userids))
    if required and not userids:
        errors.add(key, _("至少需要一位接待成员。"), raw)
        return None
    found = {e.userid: e for e in Employee.objects.filter(userid__in=userids)}
    unknown = [u for u in userids if u not in found]
    if unknown:
        errors.add(key, _("未知成员：%(u)s") % {"u": "、".join(unknown)}, unknown)
        return None
    departed = [u for u in userids if found[u].status != EmployeeStatus.ACTIVE or not found[u].is_active]
    if departed:
        errors.add(key, _("成员已离职：%(u)s") % {"u": "、".join(departed)}, departed)
        return None
    if not manages_all_codes(actor):
        reach = reachable_employee_ids(actor.employee)
        outside = [u for u in userids if found[u].pk not in reach]
        if outside:
            errors.add(key, _("只能选择你所管理部门的成员：%(u)s") % {"u": "、".join(outside)}, outside)
            return None
    return [found[u] for u in userids]


def _tags(errors: _Errors, actor: Actor, data: Mapping) -> list[Tag] | None:
    if "tags" not in data:
        return None
    raw = data["tags"]
    if raw is None:
        raw = []
    ids, bad = [], []
    for value in raw if isinstance(raw, list | tuple) else [raw]:
        if isinstance(value, Tag):
            ids.append(value.pk)
        elif isinstance(value, int) and not isinstance(value, bool) and 0 < value < 2**31:
            ids.append(value)
        elif isinstance(value, str) and value.isdigit() and 0 < int(value) < 2**31:
            ids.append(int(value))
        else:
            bad.append(value)
    if bad or not isinstance(raw, list | tuple):
        errors.add("tags", _("必须是标签 id 列表。"), bad or raw)
        return None
    ids = list(dict.fromkeys(ids))
    allowed = {t.pk: t for t in usable_tags(actor).filter(pk__in=ids).select_related("group")}
    refused = [i for i in ids if i not in allowed]
    if refused:
        errors.add("tags", _("未知标签，或你不能使用这些标签：%(t)s") % {"t": ", ".join(map(str, refused))}, refused)
        return None
    tags = [allowed[i] for i in ids]
    single = {g.pk: g for g in TagGroup.objects.filter(pk__in={t.group_id for t in tags}, single_choice=True)}
    by_group: dict[int, list[Tag]] = {}
    for tag in tags:
        if tag.group_id in single:
            by_group.setdefault(tag.group_id, []).append(tag)
    for group_id, group_tags in by_group.items():
        if len(group_tags) > 1:
            errors.add("tags", _("「%(g)s」是单选标签组，只能选其中一个标签（%(t)s）。") % {
                "g": single[group_id].name, "t": "、".join(t.name for t in group_tags)}, [t.pk for t in group_tags])
            return None
    return tags


def _daily_limit(errors: _Errors, data: Mapping) -> tuple[bool, int | None]:
    if "daily_limit" not in data:
        return False, None
    value = data["daily_limit"]
    if value in (None, ""):
        return True, None
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= DAILY_LIMIT_MAX:
        errors.add("daily_limit", _("必须是 1–%(n)s 的整数，或 null 表示不限。") % {"n": DAILY_LIMIT_MAX}, value)
        return False, None
    return True, value


def clean_working_hours(errors: _Errors, value: Any) -> dict | None:
    """{"0": [["09:00", "18:00"], ...], ..., "6": [...]} (Monday = "0"); `{}` = always open."""
    if value in (None, ""):
        return {}
    if not isinstance(value, Mapping):
        errors.add("working_hours", _("必须是对象，例如 {\"0\": [[\"09:00\", \"18:00\"]]}（0 = 周一）。"), value)
        return None
    out = {}
    for day, spans in value.items():
        if str(day) not in {str(i) for i in range(7)} or not isinstance(spans, list):
            errors.add("working_hours", _("星期必须是 0–6（0 = 周一），值是时间段列表。"), {day: spans})
            return None
        clean = []
        for span in spans:
            if (not isinstance(span, list | tuple) or len(span) != 2 or not all(isinstance(v, str) for v in span)
                    or not all(HM_RE.match(v) for v in span) or span[0] >= span[1]):
                errors.add("working_hours", _("时间段必须是 [\"HH:MM\", \"HH:MM\"]，且开始早于结束。"), span)
                return None
            clean.append([span[0], span[1]])
        out[str(day)] = sorted(clean)
    return out


def _remark_template(errors: _Errors, data: Mapping) -> str | None:
    value = _text(errors, data, "remark_template", REMARK_MAX_LENGTH)
    if not value:
        return value
    try:
        names = {name for _lit, name, _spec, _conv in string.Formatter().parse(value) if name is not None}
    except ValueError:
        names = {"?"}
    unknown = names - REMARK_FIELDS
    if unknown:
        errors.add("remark_template", _("只能使用 {channel}、{name}、{employee}。"), value)
        return None
    return value


def _clean(actor: Actor, data: Mapping, code: ChannelCode | None) -> dict:
    """Every field of a create (all) or update (those given), validated; 400 naming the bad fields."""
    if not isinstance(data, Mapping):
        raise ValidationFailed(_("请求体必须是对象。"), details={"body": "expected an object"})
    errors = _Errors()
    creating = code is None
    out: dict[str, Any] = {}
    if creating or "name" in data:
        out["name"] = _text(errors, {"name": data.get("name")}, "name", NAME_MAX_LENGTH, required=True)
    if "state" in data and data["state"] not in (None, ""):
        state = data["state"]
        if not isinstance(state, str) or not STATE_RE.match(state):
            errors.add("state", _("state 为 1–30 位字母、数字、_ 或 -。"), state)
        else:
            out["state"] = state
    elif creating:
        out["state"] = None  # generated below
    employees = _employees(errors, actor, data, "employees", required=True) if (
        creating or "employees" in data) else None
    if creating and "employees" not in data:
        errors.add("employees", _("至少需要一位接待成员。"), None)
    if employees is not None:
        out["employees"] = employees
    backups = _employees(errors, actor, data, "backup_employees", required=False)
    if backups is not None:
        out["backup_employees"] = backups
    if (employees is not None or backups is not None) and not {"employees", "backup_employees"} & set(errors):
        # An update may change one list only: compare it with the code's other list as stored.
        receiving = employees if employees is not None else (list(code.employees.all()) if code else [])
        backing = backups if backups is not None else (list(code.backup_employees.all()) if code else [])
        both = [e.userid for e in backing if e in receiving]
        if both:
            errors.add("backup_employees", _("备用成员不能同时是接待成员：%(u)s") % {"u": "、".join(both)}, both)
    given, limit = _daily_limit(errors, data)
    if given:
        out["daily_limit"] = limit
    if "rotation" in data:
        if data["rotation"] not in Rotation.values:
            errors.add("rotation", _("必须是 %(v)s 之一。") % {"v": "、".join(Rotation.values)}, data["rotation"])
        else:
            out["rotation"] = data["rotation"]
    if "working_hours" in data:
        hours = clean_working_hours(errors, data["working_hours"])
        if hours is not None:
            out["working_hours"] = hours
    tags = _tags(errors, actor, data)
    if tags is not None:
        out["tags"] = tags
    remark = _remark_template(errors, data)
    if remark is not None:
        out["remark_template"] = remark
    for key in ("description", "welcome_message"):
        value = _text(errors, data, key, TEXT_MAX_LENGTH)
        if value is not None:
            out[key] = value
    for key in ("skip_verify", "enabled"):
        value = _bool(errors, data, key)
        if value is not None:
            out[key] = value
    if "department" in data:
        out["department"] = _department(errors, data["department"])
    elif creating and actor.employee is not None:
        depts = managed_department_ids(actor.employee)
        if len(depts) == 1:  # a manager of one department: the code is that department's
            out["department"] = Department.objects.filter(pk__in=depts).first()
    if not manages_all_codes(actor):
        department = out.get("department", code.department if code else None)
        if department is None or department.pk not in managed_department_ids(actor.employee):
            errors.add("department", _("请选择你所管理的部门。"), getattr(department, "pk", None))
    errors.raise_if_any()
    return out


def _department(errors: _Errors, value) -> Department | None:
    if value in (None, ""):
        return None
    if isinstance(value, Department):
        return value
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value < 2**31:
        errors.add("department", _("必须是部门 id。"), value)
        return None
    department = Department.objects.filter(pk=value).first()
    if department is None:
        errors.add("department", _("部门 %(id)s 不存在。") % {"id": value}, value)
    return department


def _check_state_free(state: str, code: ChannelCode | None) -> None:
    taken = ChannelCode.objects.filter(state=state)
    if code is not None:
        taken = taken.exclude(pk=code.pk)
    if taken.exists():
        raise Conflict(_("state“%(s)s”已被其他渠道活码使用。") % {"s": state}, details={"state": state},
                       code="duplicate_state")


# ---------------------------------------------------------------- create, update, delete


def _apply(code: ChannelCode, values: dict) -> None:
    for key in ("name", "state", "daily_limit", "rotation", "working_hours", "remark_template", "description",
                "welcome_message", "skip_verify", "enabled", "department"):
        if key in values:
            setattr(code, key, values[key])


def _save(code: ChannelCode, values: dict) -> None:
    try:
        with transaction.atomic():
            code.save()
    except IntegrityError as exc:  # two writers picked the same state at once
        raise Conflict(_("state“%(s)s”已被其他渠道活码使用。") % {"s": code.state}, details={"state": code.state},
                       code="duplicate_state") from exc
    if "employees" in values:
        code.employees.set(values["employees"])
    if "backup_employees" in values:
        code.backup_employees.set(values["backup_employees"])
    if "tags" in values:
        code.tags.set(values["tags"])


@transaction.atomic
def channel_code_create(*, actor: Actor, data: Mapping[str, Any]) -> ChannelCode:
    """新建渠道活码 from API.md's fields (employees and backups as userids, tags as ids); 400 naming each
    bad field, 409 for a state another code uses. Managers: a department they manage, its members, tags
    they see."""
    _check_writer(actor)
    values = _clean(actor, data, None)
    if values.get("state"):
        _check_state_free(values["state"], None)
    else:
        values["state"] = generate_state()
    code = ChannelCode(owner=actor.employee)
    _apply(code, values)
    _save(code, values)
    run_code_saved_handlers(code=code, created=True)
    code_refresh_receivers(code=code)
    return code


@transaction.atomic
def channel_code_update(*, actor: Actor, code: ChannelCode, data: Mapping[str, Any]) -> ChannelCode:
    """Change the fields given. The state is fixed once a customer has come through the code (409)."""
    _check_writer(actor)
    code = _lock(actor, code)
    values = _clean(actor, data, code)
    new_state = values.get("state")
    if new_state and new_state != code.state:
        if ChannelAdd.objects.filter(code=code).exists():
            raise Conflict(_("已有客户通过此渠道活码添加，state 不能再修改。"), details={"state": new_state},
                           code="state_frozen")
        _check_state_free(new_state, code)
    else:
        values.pop("state", None)
    _apply(code, values)
    _save(code, values)
    run_code_saved_handlers(code=code, created=False)
    code_refresh_receivers(code=code)
    return code


@transaction.atomic
def channel_code_delete(*, actor: Actor, code: ChannelCode) -> None:
    """Delete a code and its add records. Customers keep their tags and relations (with the state)."""
    _check_writer(actor)
    code = _lock(actor, code)
    run_code_deleted_handlers(code=code)
    code.delete()


def _lock(actor: Actor, code: ChannelCode) -> ChannelCode:
    found = codes_for(actor, "change").select_for_update().filter(pk=code.pk).first()
    if found is None:
        if codes_for(actor, "view").filter(pk=code.pk).exists():
            raise NotAllowed(_("你可以查看这个渠道活码，但不能修改它。"), code="forbidden")
        raise NotFound(_("渠道活码不存在或不可见。"), details={"id": code.pk})
    return found


@transaction.atomic
def channel_code_set_contact_way(*, code: ChannelCode, config_id: str, qr_code: str) -> ChannelCode:
    """WeCom's contact way for a code (`add_contact_way`'s `config_id` and `qr_code`; blank to clear).
    Called by the WeCom connection; fires no hook (it is the answer to one)."""
    if len(config_id or "") > 64 or len(qr_code or "") > 500:
        raise ValidationFailed(_("config_id 或 qr_code 过长。"), details={"config_id": config_id, "qr_code": qr_code})
    ChannelCode.objects.filter(pk=code.pk).update(config_id=config_id or "", qr_code=qr_code or "")
    code.config_id, code.qr_code = config_id or "", qr_code or ""
    return code


# ---------------------------------------------------------------- receivers


@transaction.atomic
def code_refresh_receivers(*, code: ChannelCode, now=None):
    """Recompute who receives the code's customers now; when it changed, store it and tell the hooks
    (the WeCom side updates the contact way). Returns the `Receivers`."""
    stored = ChannelCode.objects.select_for_update().filter(pk=code.pk).values_list("receivers", flat=True).first()
    receivers = receivers_now(code, now=now)
    ids = receivers.ids if code.enabled else []
    if ids != list(stored or []):
        ChannelCode.objects.filter(pk=code.pk).update(receivers=ids)
        code.receivers = ids
        run_receivers_changed_handlers(code=code, receivers=receivers)
    return receivers


def codes_refresh_receivers(*, now=None) -> int:
    """For the periodic task: refresh every enabled code (a new day, working hours); returns how many
    changed."""
    changed = 0
    for code in ChannelCode.objects.filter(enabled=True).prefetch_related("employees", "backup_employees"):
        before = list(code.receivers or [])
        if code_refresh_receivers(code=code, now=now).ids != before:
            changed += 1
    return changed


# ---------------------------------------------------------------- the trigger


def code_actor(code: ChannelCode) -> Actor:
    """The audit's actor for a code's taggings: automation, named after the code."""
    return Actor(label=f"渠道活码「{code.name}」#{code.pk}"[:100])


def _single_choice_safe(tags: Iterable[Tag]) -> list[int]:
    """A code's tags with at most one per single-choice group (a tag moved into such a group after the
    code was saved must not make the customer's add fail): the first by order wins."""
    tags = sorted(tags, key=lambda t: (t.order, t.pk))
    single = set(TagGroup.objects.filter(pk__in={t.group_id for t in tags}, single_choice=True)
                 .values_list("pk", flat=True))
    seen, out = set(), []
    for tag in tags:
        if tag.group_id in single:
            if tag.group_id in seen:
                continue
            seen.add(tag.group_id)
        out.append(tag.pk)
    return out


def render_remark(code: ChannelCode, *, customer_name: str, employee: Employee) -> str:
    values = {"channel": code.name, "name": customer_name, "employee": employee.name or employee.userid}
    try:
        return code.remark_template.format(**values)[:128]
    except (KeyError, IndexError, ValueError):
        return ""


@transaction.atomic
def channel_add_record(*, actor: Actor, relation: FollowRelation) -> ChannelAdd | None:
    """渠道活码自动打标签: a new (or returning) follow relation whose `state` is an enabled code's state gets
    the code's tags through the tagging service (source `channel`, actor the code) and is recorded as an
    add of that code (stats, rotation). Nothing for other relations. Runs in the caller's transaction."""
    state = relation.state
    if not state:
        return None
    code = ChannelCode.objects.select_for_update().filter(state=state, enabled=True).first()
    if code is None:
        return None
    now = timezone.now()
    # A relation that ended and came back: its earlier add ends here (if the end was not recorded).
    earlier = list(ChannelAdd.objects.select_for_update().filter(relation=relation, ended_at__isnull=True))
    if earlier:
        ChannelAdd.objects.filter(pk__in=[a.pk for a in earlier]).update(ended_at=now)
    added_at = relation.added_at or now
    if any(a.added_at >= added_at for a in earlier) or added_at > now:
        added_at = now  # a returning relation keeps its first add time; this add happens now
    tag_ids = _single_choice_safe(code.tags.all())
    change = None
    if tag_ids:
        change = customer_tags_update(actor=code_actor(code), customer=relation.customer_id, add=tag_ids,
                                      source=TagSource.CHANNEL)
    if code.remark_template and not relation.remark:
        customer = relation.customer
        remark = render_remark(code, customer_name=customer.name, employee=relation.employee)
        follow_relation_default_remark(relation=relation, remark=remark)
    add = ChannelAdd.objects.create(
        code=code, relation=relation, customer_id=relation.customer_id, employee_id=relation.employee_id,
        added_at=added_at, day=shanghai_day(added_at), tags_added=sorted(t.pk for t in change.added) if change else [],
    )
    code_refresh_receivers(code=code, now=now)
    return add


def handle_relation_added(*, actor: Actor, relation: FollowRelation) -> None:
    """The `customers.hooks` relation-added handler (registered in `ChannelsConfig.ready`)."""
    channel_add_record(actor=actor, relation=relation)


# ---------------------------------------------------------------- the landing page's try-out


TRY_NICKNAME_MAX = 30


@transaction.atomic
def channel_try_add(*, code: ChannelCode, nickname: str) -> tuple[ChannelAdd | None, Employee]:
    """落地页试用: a visitor of a standalone code's public page "adds" the employee who receives next —
    a customer `wmtry…` with a follow relation carrying the code's state, through `customer_upsert`, so
    the same trigger tags it. 409 when nobody can receive or the code is disabled."""
    nickname = (nickname or "").strip() if isinstance(nickname, str) else ""
    if not nickname or len(nickname) > TRY_NICKNAME_MAX or "\x00" in nickname:
        raise ValidationFailed(_("昵称为 1–%(n)s 个字符。") % {"n": TRY_NICKNAME_MAX}, details={"nickname": nickname})
    code = ChannelCode.objects.select_for_update().get(pk=code.pk)
    if not code.enabled:
        raise Conflict(_("此渠道活码已停用。"), details={"code": code.pk}, code="disabled")
    receiver = receivers_now(code).next
    if receiver is None:
        raise Conflict(_("现在没有成员可以接待，请稍后再试。"), details={"code": code.pk}, code="no_receiver")
    external_userid = "wmtry" + secrets.token_hex(8)
    actor = Actor(label=f"渠道活码落地页「{code.name}」"[:100])
    customer, _created = customer_upsert(actor=actor, data={
        "external_userid": external_userid, "name": nickname,
        "followers": [{"employee": receiver.userid, "state": code.state, "add_way": 1}],
    })
    add = ChannelAdd.objects.filter(code=code, customer=customer).order_by("-id").first()
    return add, receiver
