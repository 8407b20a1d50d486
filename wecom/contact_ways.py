"""Channel codes as WeCom contact ways (联系我, issue 10 item 3, the WeCom side).

`channels` offers hooks; registered here (`wecom.sync_ready`):

- code saved (created or changed) and receivers changed (someone reached the daily limit, a new
  Asia/Shanghai day restored them, working hours began or ended, employees edited): the code's
  contact way is created with `add_contact_way` (scene 2: a QR code; type 2: one or several
  employees; its `state`, remark, skip-verify) — WeCom's `config_id` and `qr_code` are stored on the
  code through `channels.services.channel_code_set_contact_way` — or updated with
  `update_contact_way` to the employees receiving right now (`ChannelCode.receivers`, as channels
  computed them; when nobody can, the code's own employees, so a scan still reaches someone);
- code deleted: `del_contact_way` with the config_id it had.

The calls run after the change commits (`wecom.sync_contact_way` / `wecom.delete_contact_way`
tasks, inline without a broker), once per code and transaction however many hooks fired.
"""

from __future__ import annotations

import logging
import threading

from django.db import transaction

from . import conf

logger = logging.getLogger(__name__)

REMARK_MAX = 30
NOT_FOUND = 41044  # invalid config_id: gone in WeCom

_scheduled = threading.local()


def _schedule(code_id: int) -> None:
    pending = getattr(_scheduled, "ids", None)
    if pending is None:
        pending = _scheduled.ids = set()
    if code_id in pending:
        return
    pending.add(code_id)

    def run() -> None:
        pending.discard(code_id)
        from .sync_tasks import sync_contact_way

        try:
            sync_contact_way.delay(code_id)
        except Exception:  # noqa: BLE001 - the code is saved; WeCom's side must not turn that into an error
            logger.exception("could not queue the contact way sync of channel code %s", code_id)

    transaction.on_commit(run)


def on_code_saved(*, code, created: bool) -> None:
    if conf.api_configured():
        _schedule(code.pk)


def on_receivers_changed(*, code, receivers) -> None:
    if conf.api_configured():
        _schedule(code.pk)


def on_code_deleted(*, code) -> None:
    if conf.api_configured() and code.config_id:
        config_id = code.config_id

        def run() -> None:
            from .sync_tasks import delete_contact_way

            try:
                delete_contact_way.delay(config_id)
            except Exception:  # noqa: BLE001 - the code is deleted; log what WeCom keeps
                logger.exception("could not queue the deletion of contact way %s", config_id)

        transaction.on_commit(run)


def _payload(code) -> dict:
    """The contact way's fields: the employees receiving now as channels last computed them
    (`ChannelCode.receivers`), else (nobody can, or disabled) the code's active employees."""
    from org.models import Employee

    by_id = dict(Employee.objects.filter(pk__in=list(code.receivers or []), status="active")
                 .values_list("pk", "userid"))
    users = [by_id[pk] for pk in code.receivers or [] if pk in by_id] or list(
        code.employees.filter(status="active").order_by("userid").values_list("userid", flat=True))
    return {"remark": code.name[:REMARK_MAX], "skip_verify": bool(code.skip_verify), "state": code.state,
            "user": users}


def contact_way_sync(*, code_id: int, api=None) -> str:
    """Create or update the code's contact way; returns "added", "updated" or "" (nothing to do)."""
    from channels.models import ChannelCode
    from channels.services import channel_code_set_contact_way

    from .client import WeComError
    from .taxonomy import client

    code = ChannelCode.objects.filter(pk=code_id).first()
    if code is None:
        return ""
    payload = _payload(code)
    if not payload["user"]:
        return ""
    api = api or client()
    if code.config_id:
        try:
            api.post("externalcontact/update_contact_way", {"config_id": code.config_id, **payload})
            return "updated"
        except WeComError as exc:
            if exc.errcode != NOT_FOUND:
                raise
            logger.warning("contact way of code %s is gone in WeCom: creating it again", code.pk)
    answer = api.post("externalcontact/add_contact_way", {"type": 2, "scene": 2, **payload})
    channel_code_set_contact_way(code=code, config_id=str(answer.get("config_id") or ""),
                                 qr_code=str(answer.get("qr_code") or ""))
    return "added"


def contact_way_delete(*, config_id: str, api=None) -> bool:
    from .client import WeComError
    from .taxonomy import client

    api = api or client()
    try:
        api.post("externalcontact/del_contact_way", {"config_id": config_id})
    except WeComError as exc:
        if exc.errcode != NOT_FOUND:
            raise
        return False
    return True
