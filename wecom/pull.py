"""Full pull from WeCom (`python manage.py wecom_sync`, the status page's button), and the org
changes of `change_contact` events.

The pull is a job (`JobKind.WECOM_SYNC`, live progress bar on the job page) in three phases, each
optional: **org** (`department/list`, `user/list`), **tags** (`get_corp_tag_list`, see
`wecom.taxonomy`), **customers** (`externalcontact/batch/get_by_user` for the active employees,
100 userids a call, cursor pages of 100). Every chunk is one WeCom page applied through our
services as `WECOM_ACTOR`, and the job's cursor (phase, batch, WeCom's next_cursor) commits with
it: a worker killed mid-pull resumes at the page it was on. It only writes what differs, so a
second pull changes nothing (and says so in its counts).

What the pull does and does not do:
- departments are created/updated by WeCom id (`external_id`; an unlinked one of the same name under
  the same parent is adopted); employees by userid (new ones as
  staff with no password; WeCom's status 5 marks them departed); accounts not in WeCom (e.g. the
  portal's own admins) are left alone;
- corp tags follow WeCom (created, renamed, deleted), then portal tags WeCom lacks are queued for
  the push;
- customers and their relations (remark, description, add time, add way, state) follow WeCom; the
  corp tags WeCom shows on a relation are added to the customer (source `wecom`), tags are not
  removed by a pull; relations already handed over in the portal are not revived;
- afterwards the tag outbox starts from the audit's end (WeCom's tags are now the portal's).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from django.db import transaction
from django.utils.translation import gettext as _

from customers.jobs import Chunk, JobHandler, job_create, job_handler
from customers.models import Customer, FollowRelation, JobKind, RelationStatus, Tagging, TagSource
from customers.services import customer_tags_update, customer_upsert
from org import services as org_services
from org.models import Department, Employee, EmployeeStatus, Role
from tagportal.errors import DomainError
from tags.models import Tag

from .mapping import WECOM_ACTOR

logger = logging.getLogger(__name__)

USERS_PER_CALL = 100
CONTACTS_PER_PAGE = 100
WECOM_QUIT = 5  # user status: 退出企业


def _client():
    from .taxonomy import client

    return client()


# ------------------------------------------------------------------ org (departments, employees)


def _dept_name(row: dict) -> str:
    return (str(row.get("name") or "") or str(row.get("id")))[:64]


def department_apply(row: dict, *, parent: Department | None) -> bool:
    """Create or update one WeCom department (by `external_id`); True if anything changed."""
    ext = str(row["id"])
    department = Department.objects.filter(external_id=ext).first()
    name, order = _dept_name(row), int(row.get("order") or 0)
    if department is None:
        # A department made in the portal before it was connected: the one of that name under the
        # same parent, not linked yet, is WeCom's.
        department = Department.objects.filter(name=name, parent=parent, external_id__isnull=True).first()
        if department is None:
            org_services.department_create(actor=WECOM_ACTOR, name=name, parent=parent, order=order,
                                           external_id=ext)
            return True
        org_services.department_update(actor=WECOM_ACTOR, department=department, external_id=ext)
        adopted = True
    else:
        adopted = False
    changes = {}
    if department.name != name:
        changes["name"] = name
    if department.parent_id != (parent.pk if parent else None):
        changes["parent"] = parent
    if department.order != order:
        changes["order"] = order
    if changes:
        org_services.department_update(actor=WECOM_ACTOR, department=department, **changes)
    return bool(changes) or adopted


def departments_apply(rows: list[dict]) -> int:
    """Apply `department/list` (parents before children, whatever the answer's order)."""
    by_id = {int(r["id"]): r for r in rows}
    done: set[int] = set()
    changed = 0

    def visit(dept_id: int, trail: tuple = ()) -> None:
        nonlocal changed
        if dept_id in done or dept_id in trail:
            return
        row = by_id[dept_id]
        parent_id = int(row.get("parentid") or 0)
        parent = None
        if parent_id in by_id and parent_id != dept_id:
            visit(parent_id, (*trail, dept_id))
            parent = Department.objects.filter(external_id=str(parent_id)).first()
        changed += int(department_apply(row, parent=parent))
        done.add(dept_id)

    for dept_id in sorted(by_id):
        visit(dept_id)
    return changed


def department_remove(*, external_id: str) -> bool:
    """`delete_party`: delete the department if nothing uses it (else it is kept, and logged)."""
    department = Department.objects.filter(external_id=str(external_id)).first()
    if department is None:
        return False
    try:
        org_services.department_delete(actor=WECOM_ACTOR, department=department)
    except DomainError as exc:
        logger.warning("WeCom deleted department %s, kept in the portal: %s", external_id, exc)
        return False
    return True


def employee_apply(row: dict) -> bool:
    """Create or update one WeCom user (by userid); True if anything changed."""
    userid = str(row.get("userid") or row.get("UserID") or "").strip()
    if not userid:
        return False
    departments = list(Department.objects.filter(external_id__in=[str(d) for d in row.get("department") or []]))
    quit_ = int(row.get("status") or 1) == WECOM_QUIT
    employee = Employee.objects.filter(userid=userid).first()
    name = str(row.get("name") or userid)[:150]
    if employee is None:
        if quit_:
            return False
        org_services.employee_create(actor=WECOM_ACTOR, userid=userid, name=name, departments=departments,
                                     roles=(Role.STAFF,))
        return True
    changes = {}
    if name and employee.name != name:
        changes["name"] = name
    if "department" in row and set(employee.departments.values_list("pk", flat=True)) != {d.pk for d in departments}:
        changes["departments"] = departments
    if quit_ and employee.status != EmployeeStatus.DEPARTED:
        changes["status"] = EmployeeStatus.DEPARTED
    if changes:
        org_services.employee_update(actor=WECOM_ACTOR, employee=employee, **changes)
    return bool(changes)


def employee_depart(*, userid: str) -> bool:
    """`delete_user`: the employee is departed; their customers wait for 离职继承 (never automatic)."""
    employee = Employee.objects.filter(userid=userid).first()
    if employee is None or employee.status == EmployeeStatus.DEPARTED:
        return False
    org_services.employee_update(actor=WECOM_ACTOR, employee=employee, status=EmployeeStatus.DEPARTED)
    return True


def org_pull(*, api=None) -> dict:
    api = api or _client()
    departments = api.get("department/list").get("department") or []
    changed_departments = departments_apply(departments)
    users = api.get("user/list", department_id=_root_id(departments), fetch_child=1).get("userlist") or []
    changed_employees = sum(int(employee_apply(u)) for u in users)
    return {"departments": changed_departments, "employees": changed_employees, "users": len(users)}


def _root_id(departments: list[dict]) -> int:
    ids = {int(d["id"]) for d in departments}
    roots = [int(d["id"]) for d in departments if int(d.get("parentid") or 0) not in ids]
    return min(roots) if roots else 1


# ------------------------------------------------------------------ customers


def _when(value) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(value), tz=UTC)
    except (TypeError, ValueError, OverflowError):
        return None


CUSTOMER_KEYS = ("name", "corp_name", "type", "gender", "avatar")


def contacts_apply(entries: list[dict]) -> dict:
    """Apply one page of batch/get_by_user: customers, relations, then the relations' corp tags.
    Only what differs is written."""
    counts = {"contacts": 0, "customers_changed": 0, "tags_added": 0}
    grouped: dict[str, dict] = {}
    for entry in entries:
        contact = entry.get("external_contact") or {}
        external = str(contact.get("external_userid") or "")
        if not external:
            continue
        slot = grouped.setdefault(external, {"contact": contact, "follow": []})
        slot["follow"].append(entry.get("follow_info") or {})
    if not grouped:
        return counts
    customers = {c.external_userid: c for c in Customer.objects.filter(external_userid__in=list(grouped))}
    userids = {str(f.get("userid")) for slot in grouped.values() for f in slot["follow"]}
    employees = {e.userid: e for e in Employee.objects.filter(userid__in=userids, status=EmployeeStatus.ACTIVE)}
    relations = {(r.customer_id, r.employee_id): r for r in FollowRelation.objects.filter(
        customer__external_userid__in=list(grouped))}
    tag_ids = {str(t) for slot in grouped.values() for f in slot["follow"] for t in f.get("tag_id") or []}
    tags = dict(Tag.objects.filter(external_id__in=tag_ids).values_list("external_id", "pk"))
    for external, slot in grouped.items():
        counts["contacts"] += 1
        contact, customer = slot["contact"], customers.get(external)
        data = {"external_userid": external}
        for key in CUSTOMER_KEYS:
            if key in contact and contact[key] is not None:
                data[key] = contact[key] if key in ("type", "gender") else str(contact[key])
        followers = []
        for info in slot["follow"]:
            employee = employees.get(str(info.get("userid")))
            if employee is None:
                continue  # unknown or departed in the portal: nothing to attach to
            relation = relations.get((customer.pk, employee.pk)) if customer else None
            if relation is not None and relation.status == RelationStatus.TRANSFERRED:
                continue  # handed over in the portal; WeCom catches up within 24 h
            values = {"employee": employee.userid, "remark": str(info.get("remark") or ""),
                      "description": str(info.get("description") or ""),
                      "add_way": int(info.get("add_way") or 0), "state": str(info.get("state") or "")[:30]}
            added = _when(info.get("createtime"))
            if added is not None:
                values["added_at"] = added.isoformat()
            if relation is None or relation.status != RelationStatus.ACTIVE or any(
                    getattr(relation, k) != values[k] for k in ("remark", "description", "add_way", "state")) or (
                    added is not None and relation.added_at != added):
                followers.append(values)
        differs = customer is None or bool(followers) or any(
            getattr(customer, k) != data[k] for k in CUSTOMER_KEYS if k in data)
        if differs:
            if customer is None and not followers:
                continue  # no follower we know: nobody would see it
            customer, _created = customer_upsert(actor=WECOM_ACTOR, data={**data, "followers": followers})
            counts["customers_changed"] += 1
        wanted = {tags[str(t)] for f in slot["follow"] for t in f.get("tag_id") or [] if str(t) in tags}
        if wanted:
            held = set(Tagging.objects.filter(customer=customer, tag_id__in=wanted).values_list("tag_id", flat=True))
            missing = sorted(wanted - held)
            if missing:
                customer_tags_update(actor=WECOM_ACTOR, customer=customer, add=missing, source=TagSource.WECOM)
                counts["tags_added"] += len(missing)
    return counts


# ------------------------------------------------------------------ the job


PHASES = ("org", "tags", "customers")


def wecom_sync_start(*, actor, org: bool = True, tags: bool = True, customers: bool = True):
    """Start a full pull as a job (runs once the caller's transaction commits)."""
    params = {"org": bool(org), "tags": bool(tags), "customers": bool(customers)}
    if not any(params.values()):
        params = dict.fromkeys(PHASES, True)
    with transaction.atomic():
        return job_create(kind=JobKind.WECOM_SYNC, actor=actor, params=params, total=0)


def _wecom_userids(api) -> list[str]:
    """The corp's users as WeCom lists them now (not those who left), which the portal has active:
    batch/get_by_user refuses a whole call for one unknown userid (e.g. a portal-only admin)."""
    departments = api.get("department/list").get("department") or []
    users = api.get("user/list", department_id=_root_id(departments), fetch_child=1).get("userlist") or []
    in_wecom = {str(u.get("userid")) for u in users if int(u.get("status") or 1) != WECOM_QUIT}
    return sorted(Employee.objects.filter(status=EmployeeStatus.ACTIVE, userid__in=in_wecom)
                  .values_list("userid", flat=True))


@job_handler(JobKind.WECOM_SYNC)
class WeComSyncJob(JobHandler):
    """The full pull: one chunk per phase step or per WeCom page (see the module docstring)."""

    chunk_size = 1
    min_chunk_size = 1
    max_chunk_size = 1

    def prepare(self, job) -> int | None:
        # Phases count one each; customers are estimated by the relations we know (grown as needed).
        estimate = sum(1 for p in ("org", "tags") if job.params.get(p))
        if job.params.get("customers"):
            estimate += max(FollowRelation.objects.filter(status=RelationStatus.ACTIVE).count(), 1)
        return max(estimate, job.total or 0, job.done or 0)

    def run_chunk(self, job, cursor, size: int) -> Chunk | None:
        cursor = dict(cursor or {"phase": 0})
        while cursor["phase"] < len(PHASES) and not job.params.get(PHASES[cursor["phase"]]):
            cursor = {"phase": cursor["phase"] + 1}
        if cursor["phase"] >= len(PHASES):
            return None
        phase = PHASES[cursor["phase"]]
        api = _client()
        try:
            if phase == "org":
                counts = org_pull(api=api)
                return Chunk(done=1, cursor={"phase": cursor["phase"] + 1}, counts={
                    "departments_changed": counts["departments"], "employees_changed": counts["employees"]})
            if phase == "tags":
                from .taxonomy import corp_tags_pull, taxonomy_push_all

                result = corp_tags_pull(api=api)
                queued = taxonomy_push_all()
                return Chunk(done=1, cursor={"phase": cursor["phase"] + 1},
                             counts={"tag_changes": result.changed, "tags_to_push": queued})
            return self._customers_page(job, cursor, api)
        finally:
            api.close()

    def _customers_page(self, job, cursor, api) -> Chunk:
        from .outbox import outbox_fast_forward

        if "userids" not in cursor:  # the phase starts: whom to ask for, fixed for the whole phase
            outbox_fast_forward()
            cursor = {**cursor, "userids": _wecom_userids(api), "batch": 0, "next": ""}
        userids = cursor["userids"]
        index = int(cursor["batch"])
        batch = userids[index * USERS_PER_CALL:(index + 1) * USERS_PER_CALL]
        if not batch:
            return Chunk(done=0, cursor={"phase": cursor["phase"] + 1})
        answer = api.post("externalcontact/batch/get_by_user", {
            "userid_list": batch, "cursor": cursor.get("next") or "", "limit": CONTACTS_PER_PAGE})
        entries = answer.get("external_contact_list") or []
        counts = contacts_apply(entries)
        next_cursor = answer.get("next_cursor") or ""
        following = {**cursor, "batch": index if next_cursor else index + 1, "next": next_cursor}
        return Chunk(done=len(entries), cursor=following, counts={
            "contacts": counts["contacts"], "customers_changed": counts["customers_changed"],
            "tags_added": counts["tags_added"]})


def latest_pull():
    from customers.models import Job

    return Job.objects.filter(kind=JobKind.WECOM_SYNC).order_by("-created_at", "-id").first()


def pull_summary(job) -> str:
    if job is None:
        return _("尚未同步")
    counts = job.counts or {}
    return _("客户 %(c)s 位（变更 %(changed)s），标签变更 %(t)s，部门变更 %(d)s，成员变更 %(e)s") % {
        "c": counts.get("contacts", 0), "changed": counts.get("customers_changed", 0),
        "t": counts.get("tag_changes", 0), "d": counts.get("departments_changed", 0),
        "e": counts.get("employees_changed", 0)}
