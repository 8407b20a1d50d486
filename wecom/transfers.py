"""Customer hand-over in WeCom (离职继承 / 在职继承), beside the portal's own transfer.

When the portal is connected, `transfer_start` (customers) calls `on_transfer_started` in its
transaction; once it commits, `wecom.send_transfer` hands the same customers over in WeCom:
`externalcontact/resigned/transfer_customer` for a departed employee (离职继承), otherwise
`externalcontact/transfer_customer` (在职继承), at most 100 customers a call, one call per
inheritor's batch. WeCom's answer is kept per customer (`WeComTransferItem.errcode`); errcode 0
only means the hand-over started. `wecom.poll_transfers` (celery beat) then reads
`transfer_result` for every pair with customers not yet ended, until each has a final status
(1 接替完毕, 3 客户拒绝, 4 接替成员客户达到上限, 5 无接替记录; 2 等待接替 keeps polling). A
`transfer_fail` event sets 3 or 4 at once. The portrait moves in the portal at once, as before.

`unassigned_list()` reads WeCom's 待分配离职成员 (`get_unassigned_list`) for the pages that list them.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from customers.models import Customer, Transfer, TransferItem
from org.models import Employee, EmployeeStatus

from . import conf
from .sync_models import FINAL_TRANSFER_STATUSES, WeComTransferItem, WeComTransferStatus

logger = logging.getLogger(__name__)

BATCH = 100  # WeCom's limit of external_userid per call
SUCCESS_MESSAGE_MAX = 200


def _client():
    from .taxonomy import client

    return client()


def on_transfer_started(*, actor, transfer: Transfer) -> None:
    """transfer-started handler: hand over in WeCom too, once the portal's transfer has committed."""
    if not conf.api_configured():
        return
    transfer_id = transfer.pk

    def queue() -> None:
        from .sync_tasks import send_transfer

        send_transfer.delay(transfer_id)

    transaction.on_commit(queue)


def _is_resigned(transfer: Transfer) -> bool:
    return bool(transfer.mark_departed) or transfer.from_employee.status == EmployeeStatus.DEPARTED


@transaction.atomic
def _items_for(transfer: Transfer) -> None:
    """One WeComTransferItem per portal item (idempotent: re-running adds nothing)."""
    resigned = _is_resigned(transfer)
    handover = transfer.from_employee.userid
    rows = TransferItem.objects.filter(transfer=transfer).values_list(
        "pk", "customer__external_userid", "to_employee__userid")
    WeComTransferItem.objects.bulk_create(
        [WeComTransferItem(transfer=transfer, item_id=pk, handover_userid=handover, takeover_userid=takeover,
                           external_userid=external, resigned=resigned) for pk, external, takeover in rows],
        ignore_conflicts=True, batch_size=2000)


def wecom_transfer_send(*, transfer_id: int, api=None) -> int:
    """Send the transfer's customers not sent yet, ≤100 per call; returns how many were sent."""
    transfer = Transfer.objects.select_related("from_employee").filter(pk=transfer_id).first()
    if transfer is None:
        return 0
    _items_for(transfer)
    api = api or _client()
    sent = 0
    pending = WeComTransferItem.objects.filter(transfer=transfer, sent_at__isnull=True).order_by("pk")
    by_takeover: dict[str, list[WeComTransferItem]] = defaultdict(list)
    for item in pending:
        by_takeover[item.takeover_userid].append(item)
    for takeover, items in by_takeover.items():
        for start in range(0, len(items), BATCH):
            sent += _send_batch(api, transfer, takeover, items[start:start + BATCH])
    return sent


def _send_batch(api, transfer: Transfer, takeover: str, items: list[WeComTransferItem]) -> int:
    from .client import WeComError

    resigned = items[0].resigned
    payload = {"handover_userid": items[0].handover_userid, "takeover_userid": takeover,
               "external_userid": [i.external_userid for i in items]}
    path = "externalcontact/resigned/transfer_customer" if resigned else "externalcontact/transfer_customer"
    if not resigned:
        payload["transfer_success_msg"] = _("您好，您的服务已升级，后续将由我的同事接替我的工作，继续为您服务。")[
            :SUCCESS_MESSAGE_MAX]
    now = timezone.now()
    # Marked as sent (answer unknown) before the call, committed: a worker dying after WeCom took the
    # call never sends these customers twice; polling settles them (found in transfer_result: errcode 0).
    WeComTransferItem.objects.filter(pk__in=[i.pk for i in items]).update(sent_at=now, errcode=None)
    try:
        answer = api.post(path, payload)
        codes = {str(c.get("external_userid")): int(c.get("errcode", 0) or 0) for c in answer.get("customer") or []}
    except WeComError as exc:
        if exc.retryable:  # not taken: send the batch again later (the task, or the next poll)
            WeComTransferItem.objects.filter(pk__in=[i.pk for i in items]).update(sent_at=None)
            raise
        codes = {i.external_userid: exc.errcode for i in items}
    with transaction.atomic():
        for item in items:
            item.sent_at = now
            item.errcode = codes.get(item.external_userid, 0)
            item.status = WeComTransferStatus.SENT if item.errcode == 0 else None
        WeComTransferItem.objects.bulk_update(items, ["sent_at", "errcode", "status"])
    return len(items)


def wecom_transfers_poll(*, api=None) -> int:
    """Read transfer_result for every pair with customers still on their way; returns updates."""
    api = api or _client()
    # Started in WeCom (errcode 0), or sent by a worker that died before it read the answer.
    open_items = WeComTransferItem.objects.filter(
        Q(errcode=0) | Q(errcode__isnull=True, sent_at__isnull=False)).exclude(status__in=FINAL_TRANSFER_STATUSES)
    # Unsent items of a transfer whose send task was lost: send them first.
    unsent = WeComTransferItem.objects.filter(sent_at__isnull=True).values_list("transfer_id", flat=True)
    for transfer_id in set(unsent):
        wecom_transfer_send(transfer_id=transfer_id, api=api)
    pairs = set(open_items.values_list("handover_userid", "takeover_userid", "resigned"))
    updated = 0
    for handover, takeover, resigned in sorted(pairs):
        results = _results(api, handover, takeover, resigned)
        now = timezone.now()
        with transaction.atomic():
            items = list(open_items.filter(handover_userid=handover, takeover_userid=takeover, resigned=resigned)
                         .select_for_update())
            changed = []
            for item in items:
                found = results.get(item.external_userid)
                item.checked_at = now
                if found is not None and found["status"] != item.status:
                    item.status = found["status"]
                    item.takeover_time = found["takeover_time"]
                    item.errcode = 0  # WeCom has it: the call went through
                    updated += 1
                changed.append(item)
            WeComTransferItem.objects.bulk_update(changed, ["status", "takeover_time", "checked_at", "errcode"])
    return updated


def _results(api, handover: str, takeover: str, resigned: bool) -> dict[str, dict]:
    path = "externalcontact/resigned/transfer_result" if resigned else "externalcontact/transfer_result"
    out: dict[str, dict] = {}
    cursor = ""
    while True:
        answer = api.post(path, {"handover_userid": handover, "takeover_userid": takeover, "cursor": cursor})
        for row in answer.get("customer") or []:
            try:
                status = int(row.get("status"))
            except (TypeError, ValueError):
                continue
            if status not in WeComTransferStatus.values:
                continue
            when = row.get("takeover_time")
            out[str(row.get("external_userid"))] = {
                "status": status,
                "takeover_time": datetime.fromtimestamp(int(when), tz=UTC) if when else None,
            }
        cursor = answer.get("next_cursor") or ""
        if not cursor:
            return out


FAIL_REASONS = {"customer_refused": WeComTransferStatus.REFUSED, "customer_limit_exceed": WeComTransferStatus.LIMIT}


@transaction.atomic
def wecom_transfer_failed(*, takeover_userid: str, external_userid: str, reason: str) -> int:
    """The `transfer_fail` event: the newest hand-over of that customer to that employee failed."""
    status = FAIL_REASONS.get(reason)
    if status is None:
        logger.warning("transfer_fail with unknown FailReason %r", reason)
        return 0
    item = (WeComTransferItem.objects.select_for_update()
            .filter(takeover_userid=takeover_userid, external_userid=external_userid).order_by("-pk").first())
    if item is None:
        return 0
    item.status = status
    item.checked_at = timezone.now()
    item.save(update_fields=["status", "checked_at"])
    return 1


def transfer_column(transfer: Transfer, items) -> tuple[str, dict] | None:
    """The result page's column: WeCom's status of each customer, when the transfer went to WeCom."""
    rows = {w.item_id: w for w in WeComTransferItem.objects.filter(item_id__in=[i.pk for i in items])}
    if not rows:
        return None
    return _("企业微信状态"), {item_id: transfer_status_text(w) for item_id, w in rows.items()}


def transfer_status_text(item: WeComTransferItem) -> str:
    if item.sent_at is None:
        return _("待提交")
    if item.errcode:
        return _("提交失败（错误码 %(code)s）") % {"code": item.errcode}
    if item.errcode is None:
        return _("已提交，等待企业微信确认")
    return str(WeComTransferStatus(item.status).label) if item.status is not None else _("已提交")


# ------------------------------------------------------------------ 待分配离职成员


@dataclass
class UnassignedCustomer:
    """One customer of a departed employee waiting for 离职继承 in WeCom."""

    handover_userid: str
    external_userid: str
    dimission_time: datetime | None
    employee: Employee | None
    customer: Customer | None


def unassigned_list(*, api=None, page_size: int = 1000, cursor: str = "") -> tuple[list[UnassignedCustomer], str]:
    """One page of WeCom's get_unassigned_list, with the portal's employee and customer where
    known; returns (rows, next cursor or "" on the last page)."""
    api = api or _client()
    answer = api.post("externalcontact/get_unassigned_list",
                      {"page_size": max(1, min(int(page_size), 1000)), "cursor": cursor})
    info = answer.get("info") or []
    employees = {e.userid: e for e in Employee.objects.filter(userid__in={str(i.get("handover_userid")) for i in info})}
    customers = {c.external_userid: c for c in
                 Customer.objects.filter(external_userid__in={str(i.get("external_userid")) for i in info})}
    rows = []
    for row in info:
        handover, external = str(row.get("handover_userid")), str(row.get("external_userid"))
        when = row.get("dimission_time")
        rows.append(UnassignedCustomer(
            handover_userid=handover, external_userid=external,
            dimission_time=datetime.fromtimestamp(int(when), tz=UTC) if when else None,
            employee=employees.get(handover), customer=customers.get(external)))
    next_cursor = "" if answer.get("is_last", True) else str(answer.get("next_cursor") or "")
    return rows, next_cursor


UNASSIGNED_CACHE_SECONDS = 60


def unassigned_counts_source() -> dict[str, int] | None:
    """For the 待分配离职成员 page (`customers.hooks.register_unassigned_source`): how many customers
    WeCom lists as waiting for 离职继承 per departed employee (all pages of get_unassigned_list,
    cached a minute); None when not connected or WeCom does not answer (the page then shows no column)."""
    if not conf.api_configured():
        return None
    from django.core.cache import cache

    from .client import WeComError

    key = "wecom:unassigned_counts"
    counts = cache.get(key)
    if counts is not None:
        return counts
    counts: dict[str, int] = {}
    cursor = ""
    try:
        while True:
            rows, cursor = unassigned_list(cursor=cursor)
            for row in rows:
                counts[row.handover_userid] = counts.get(row.handover_userid, 0) + 1
            if not cursor:
                break
    except WeComError as exc:
        logger.warning("get_unassigned_list failed: %s", exc)
        return None
    cache.set(key, counts, UNASSIGNED_CACHE_SECONDS)
    return counts
