"""聊天记录 ingestion: `messages_ingest` stores chat messages in bulk, idempotent by `msgid`.

Two shapes are accepted per item (API.md "Messages and keyword rules", WECOM.md "Chat archive"):

* ours: `{"msgid", "external_userid" | "customer", "employee", "direction", "content", "sent_at"}`;
* WeCom's 会话内容存档 as an archive puller decrypts it: `{"msgid", "action", "from", "tolist",
  "msgtime" (ms), "msgtype", "text": {"content"}}`. The side whose id starts with `wm`/`wo` is the
  external contact (the customer): a message *from* it is `in`, one *to* it is `out`. Only `send`
  actions are messages (`recall`/`switch` are skipped); non-text messages are stored with their
  type as content (`[image]`) and are not offered for matching.

Everything is validated first; any bad item rejects the call (ValidationFailed listing each bad item
with its index) and nothing is stored. Messages of a customer nobody follows, or from/to a departed
employee, are stored like any other. The write is set-based: on PostgreSQL a `COPY` into a temporary
table and one `INSERT ... ON CONFLICT (msgid) DO NOTHING RETURNING`; elsewhere `bulk_create`.
The ids of the new text messages go to `customers.hooks` handlers in the same transaction (keyword
rules queue them for matching).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from org.actors import Actor
from org.models import Employee, Role
from tagportal.errors import NotAllowed, TooLarge, ValidationFailed

from ..hooks import run_messages_added_handlers
from ..models import Customer, Direction, Message

MAX_MESSAGES = 10_000
MAX_CONTENT = 20_000
EXTERNAL_PREFIXES = ("wm", "wo")
DIRECTIONS = frozenset(Direction.values)  # enum `.values` is slow; this runs per item


@dataclass
class IngestResult:
    created: int = 0
    duplicates: int = 0
    skipped: int = 0  # WeCom archive items that are not messages (recall, switch)

    def as_dict(self) -> dict[str, int]:
        return {"created": self.created, "duplicates": self.duplicates, "skipped": self.skipped}


@dataclass
class _Row:
    msgid: str
    customer: Any  # external_userid (str) or id (int) until resolved
    employee: str
    direction: str
    content: str
    sent_at: dt.datetime
    matchable: bool


def _is_external(userid: Any) -> bool:
    return isinstance(userid, str) and userid.startswith(EXTERNAL_PREFIXES)


def _text(value: Any) -> bool:
    return isinstance(value, str) and "\x00" not in value


def _parse_time(value: Any) -> dt.datetime | None:
    if not isinstance(value, str) or not value or "\x00" in value:
        return None
    try:
        when = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    if timezone.is_naive(when):
        when = timezone.make_aware(when)
    try:  # the matcher reads times back as epoch seconds: an instant Python cannot hold would stop it
        utc = when.astimezone(dt.UTC)
    except (OverflowError, ValueError):
        return None
    return when if 1970 <= utc.year <= 9998 else None


def _parse_ours(item: dict, errors: list[dict]) -> _Row | None:
    msgid = item.get("msgid")
    customer = item.get("customer") if "customer" in item else item.get("external_userid")
    if "customer" in item:
        if isinstance(customer, bool) or not isinstance(customer, int) or not 0 < customer < 2**63:
            errors.append({"field": "customer", "message": _("customer 必须是客户 id。")})
    elif not _text(customer) or not customer:
        errors.append({"field": "external_userid", "message": _("需要 external_userid 或 customer。")})
    employee = item.get("employee")
    if not _text(employee) or not employee:
        errors.append({"field": "employee", "message": _("需要成员 userid (employee)。")})
    direction = item.get("direction", Direction.IN)
    if direction not in DIRECTIONS:
        errors.append({"field": "direction", "message": _("direction 只能是 in 或 out。")})
    content = item.get("content")
    if not _text(content):
        errors.append({"field": "content", "message": _("content 必须是字符串。")})
    elif len(content) > MAX_CONTENT:
        errors.append({"field": "content", "message": _("content 最长 %(n)d 个字符。") % {"n": MAX_CONTENT}})
    sent_at = _parse_time(item.get("sent_at")) if "sent_at" in item else timezone.now()
    if sent_at is None:
        errors.append({"field": "sent_at", "message": _("sent_at 必须是 ISO 8601 时间。")})
    if errors:
        return None
    return _Row(msgid, customer, employee, direction, content, sent_at, True)


def _parse_wecom(item: dict, errors: list[dict]) -> _Row | None:
    sender, tolist = item.get("from"), item.get("tolist")
    if not _text(sender) or not sender:
        errors.append({"field": "from", "message": _("from 必须是 userid 或外部联系人 id。")})
    if not isinstance(tolist, list) or not tolist or not all(_text(t) and t for t in tolist):
        errors.append({"field": "tolist", "message": _("tolist 必须是非空的 id 列表。")})
    msgtime = item.get("msgtime")
    if isinstance(msgtime, bool) or not isinstance(msgtime, int) or not 0 < msgtime < 32503680000000:
        errors.append({"field": "msgtime", "message": _("msgtime 必须是毫秒时间戳。")})
    msgtype = item.get("msgtype")
    if not _text(msgtype) or not msgtype or len(msgtype) > 32:
        errors.append({"field": "msgtype", "message": _("msgtype 必须是字符串。")})
    content = ""
    if msgtype == "text":
        text = item.get("text")
        content = text.get("content") if isinstance(text, dict) else None
        if not _text(content):
            errors.append({"field": "text.content", "message": _("文本消息需要 text.content。")})
        elif len(content) > MAX_CONTENT:
            errors.append({"field": "text.content", "message": _("content 最长 %(n)d 个字符。") % {"n": MAX_CONTENT}})
    if errors:
        return None
    if _is_external(sender):
        customer, employees, direction = sender, [t for t in tolist if not _is_external(t)], Direction.IN
    else:
        customer = next((t for t in tolist if _is_external(t)), None)
        employees, direction = [sender], Direction.OUT
    if customer is None or not employees:
        errors.append({"field": "tolist", "message": _("消息的双方必须是一位成员和一位外部联系人（wm/wo 开头）。")})
        return None
    sent_at = dt.datetime.fromtimestamp(msgtime / 1000, tz=dt.UTC)
    is_text = msgtype == "text"
    return _Row(item["msgid"], customer, employees[0], direction, content if is_text else f"[{msgtype}]", sent_at,
                is_text)


def _check_actor(actor: Actor) -> None:
    if not actor.can_write:
        raise NotAllowed(_("只读密钥不能写入。"), code="read_only")
    if not actor.has_role(Role.ENTERPRISE_ADMIN):
        raise NotAllowed(_("只有企业管理员或企业级 API 客户端可以导入聊天记录。"))


@transaction.atomic
def messages_ingest(*, actor: Actor, messages: Any) -> IngestResult:
    """导入聊天记录: validate every item, then store the new ones set-based (see module docstring).

    Raises TooLarge above MAX_MESSAGES items, ValidationFailed (details: `[{"index", "msgid",
    "errors"}]`) if any item is bad; nothing is stored then."""
    _check_actor(actor)
    if not isinstance(messages, list):
        raise ValidationFailed(_("messages 必须是列表。"), details={"messages": "expected a list"})
    if len(messages) > MAX_MESSAGES:
        raise TooLarge(
            _("每次最多 %(max)d 条消息（收到 %(n)d 条）。") % {"max": MAX_MESSAGES, "n": len(messages)},
            details={"max": MAX_MESSAGES, "given": len(messages)},
        )
    result = IngestResult()
    rows: list[tuple[int, _Row]] = []
    bad: list[dict] = []
    for index, item in enumerate(messages):
        errors: list[dict] = []
        if not isinstance(item, dict):
            bad.append({"index": index, "errors": [{"field": None, "message": _("每条消息必须是对象。")}]})
            continue
        msgid = item.get("msgid")
        if not _text(msgid) or not msgid or len(msgid) > 128:
            errors.append({"field": "msgid", "message": _("msgid 必须是 1–128 个字符的字符串。")})
        wecom = "msgtime" in item or "tolist" in item or "action" in item
        if wecom and item.get("action", "send") != "send":
            if not errors:
                result.skipped += 1
            else:
                bad.append({"index": index, "msgid": msgid, "errors": errors})
            continue
        row = (_parse_wecom if wecom else _parse_ours)(item, errors)
        if errors or row is None:
            bad.append({"index": index, "msgid": msgid if _text(msgid) else None, "errors": errors})
        else:
            rows.append((index, row))

    # Resolve customers and employees in one query each.
    externals = {r.customer for _i, r in rows if isinstance(r.customer, str)}
    ids = {r.customer for _i, r in rows if isinstance(r.customer, int)}
    by_external = _lookup(Customer, "external_userid", "id", externals, "text")
    known_ids = set(_lookup(Customer, "id", "id", ids, "bigint")) if ids else set()
    by_userid = _lookup(Employee, "userid", "id", {r.employee for _i, r in rows}, "text")
    resolved: list[tuple[_Row, int, int]] = []
    for index, row in rows:
        errors = []
        customer_id = by_external.get(row.customer) if isinstance(row.customer, str) else (
            row.customer if row.customer in known_ids else None)
        if customer_id is None:
            errors.append({"field": "customer", "code": "unknown_customer",
                           "message": _("未知客户：%(c)s") % {"c": row.customer}})
        employee_id = by_userid.get(row.employee)
        if employee_id is None:
            errors.append({"field": "employee", "code": "unknown_employee",
                           "message": _("未知成员：%(e)s") % {"e": row.employee}})
        if errors:
            bad.append({"index": index, "msgid": row.msgid, "errors": errors})
        else:
            resolved.append((row, customer_id, employee_id))
    if bad:
        bad.sort(key=lambda b: b["index"])
        raise ValidationFailed(
            _("%(n)d 条消息无效，未保存任何消息。") % {"n": len(bad)}, details=bad, code="invalid_items"
        )

    unique: dict[str, tuple[_Row, int, int]] = {}
    for entry in resolved:
        if entry[0].msgid in unique:
            result.duplicates += 1
        else:
            unique[entry[0].msgid] = entry
    if not unique:
        return result
    created = _write(list(unique.values()))
    result.created = len(created)
    result.duplicates += len(unique) - len(created)
    matchable = [pk for msgid, pk in created if unique[msgid][0].matchable]
    run_messages_added_handlers(message_ids=sorted(matchable))
    return result


def _lookup(model, key: str, value: str, keys: set, sql_type: str) -> dict:
    """{key: value} for the rows of `model` whose `key` is one of `keys`: one array parameter on
    PostgreSQL (10,000 placeholders cost more to build than the query takes)."""
    if not keys:
        return {}
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT {key}, {value} FROM {model._meta.db_table} WHERE {key} = ANY(%s::{sql_type}[])",
                           [list(keys)])
            return dict(cursor.fetchall())
    found: dict = {}
    keys = list(keys)
    for start in range(0, len(keys), 500):
        found.update(model.objects.filter(**{f"{key}__in": keys[start:start + 500]}).values_list(key, value))
    return found


def _write(entries: list[tuple[_Row, int, int]]) -> list[tuple[str, int]]:
    """Insert the messages whose msgid is new; return (msgid, id) of those inserted."""
    table = Message._meta.db_table
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "CREATE TEMP TABLE IF NOT EXISTS tp_message_in (msgid text, customer_id bigint, employee_id bigint, "
                "direction text, content text, sent_at timestamptz) ON COMMIT DELETE ROWS"
            )
            cursor.execute("TRUNCATE tp_message_in")
            with cursor.copy("COPY tp_message_in FROM STDIN") as copy:
                for row, customer_id, employee_id in entries:
                    copy.write_row((row.msgid, customer_id, employee_id, row.direction, row.content, row.sent_at))
            cursor.execute(
                f"INSERT INTO {table} (msgid, customer_id, employee_id, direction, content, sent_at) "
                "SELECT msgid, customer_id, employee_id, direction, content, sent_at FROM tp_message_in "
                "ON CONFLICT (msgid) DO NOTHING RETURNING msgid, id"
            )
            return cursor.fetchall()
    msgids = [row.msgid for row, _c, _e in entries]
    existing: set[str] = set()
    for start in range(0, len(msgids), 500):
        existing.update(Message.objects.filter(msgid__in=msgids[start:start + 500]).values_list("msgid", flat=True))
    new = [
        Message(msgid=row.msgid, customer_id=c, employee_id=e, direction=row.direction, content=row.content,
                sent_at=row.sent_at)
        for row, c, e in entries
        if row.msgid not in existing
    ]
    Message.objects.bulk_create(new, batch_size=500)
    created: list[tuple[str, int]] = []
    new_ids = [m.msgid for m in new]
    for start in range(0, len(new_ids), 500):
        created.extend(Message.objects.filter(msgid__in=new_ids[start:start + 500]).values_list("msgid", "pk"))
    return created
