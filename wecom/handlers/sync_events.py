"""Events of the sync's concern: `change_external_tag` (corp tags changed in WeCom), `change_contact`
(the address book) and `transfer_fail` (a hand-over refused or over the limit).

Each re-reads or applies through the same services as everything else, as `WECOM_ACTOR`, so what
comes from WeCom is audited with source `wecom` and never pushed back.
"""

from __future__ import annotations

from wecom.events import event_handler


def _field(event, name: str, default=""):
    value = (event.payload or {}).get(name, default)
    return value if value is not None else default


@event_handler("change_external_tag")
def corp_tags_changed(event) -> None:
    """create / update / delete / shuffle of a tag or tag group in WeCom: re-read what changed
    (everything on shuffle) and apply it to the taxonomy by `external_id`."""
    from wecom.taxonomy import corp_tags_apply, corp_tags_fetch, corp_tags_pull

    change = str(_field(event, "ChangeType"))
    kind = str(_field(event, "TagType") or "tag")
    ident = str(_field(event, "Id"))
    if change == "shuffle" or not ident:
        corp_tags_pull()
        return
    if change == "delete":
        corp_tags_apply([], deleted_ids=(ident,))
        return
    groups = corp_tags_fetch(group_ids=[ident]) if kind == "tag_group" else corp_tags_fetch(tag_ids=[ident])
    corp_tags_apply(groups)


@event_handler("change_contact")
def address_book_changed(event) -> None:
    """Departments and employees created, updated, deleted in WeCom. A deleted user becomes departed;
    their customers wait for 离职继承 (never handed over automatically)."""
    from org.models import Department
    from wecom import pull

    change = str(_field(event, "ChangeType"))
    if change in ("create_party", "update_party"):
        ident = _field(event, "Id")
        existing = Department.objects.filter(external_id=str(ident)).first()
        row = {"id": ident,
               "name": _field(event, "Name") or (existing.name if existing else str(ident)),
               "order": _field(event, "Order") or (existing.order if existing else 0)}
        parent_ext = _field(event, "ParentId")
        if parent_ext:
            parent = Department.objects.filter(external_id=str(parent_ext)).first()
        else:
            parent = existing.parent if existing else None
        pull.department_apply(row, parent=parent)
    elif change == "delete_party":
        pull.department_remove(external_id=str(_field(event, "Id")))
    elif change in ("create_user", "update_user"):
        userid = str(_field(event, "UserID"))
        new_userid = str(_field(event, "NewUserID"))
        if new_userid and new_userid != userid:
            _rename_user(userid, new_userid)
            userid = new_userid
        row = {"userid": userid}
        if _field(event, "Name"):
            row["name"] = _field(event, "Name")
        departments = str(_field(event, "Department"))
        if departments:
            row["department"] = [d for d in departments.split(",") if d]
        if _field(event, "Status"):
            row["status"] = _field(event, "Status")
        if "name" not in row:
            from org.models import Employee

            existing = Employee.objects.filter(userid=userid).first()
            row["name"] = existing.name if existing else userid
        pull.employee_apply(row)
    elif change == "delete_user":
        pull.employee_depart(userid=str(_field(event, "UserID")))


def _rename_user(old: str, new: str) -> None:
    from org import services as org_services
    from org.models import Employee
    from wecom.mapping import WECOM_ACTOR

    employee = Employee.objects.filter(userid=old).first()
    if employee is not None and not Employee.objects.filter(userid=new).exists():
        org_services.employee_update(actor=WECOM_ACTOR, employee=employee, userid=new)


@event_handler("change_external_contact", "transfer_fail")
def transfer_failed(event) -> None:
    """接替失败: the customer refused, or the inheritor has too many customers."""
    from wecom.transfers import wecom_transfer_failed

    wecom_transfer_failed(takeover_userid=str(_field(event, "UserID")),
                          external_userid=str(_field(event, "ExternalUserID")),
                          reason=str(_field(event, "FailReason")))
