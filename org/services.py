"""Writes of the org app: departments, employees, API clients. Keyword-only, atomic.

Every write takes the acting `Actor` and checks its rights here, so the admin, the API, the
demo seed and tasks share one set of rules:

- departments: enterprise admins (and enterprise-level API clients) only;
- employees: enterprise admins and HR; only enterprise admins grant or take away the
  privileged roles (enterprise admin, tag admin) or touch an enterprise admin's account.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.auth.models import Group
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import router, transaction
from django.db.models import ProtectedError, RestrictedError
from django.db.models.deletion import Collector
from django.utils import timezone
from django.utils.translation import gettext as _

from tagportal.errors import Conflict, NotAllowed, ValidationFailed
from tagportal.locks import tree_lock
from tagportal.text import join_list

from .actors import Actor
from .models import ApiClient, Department, Employee, EmployeeStatus, Role
from .selectors import department_usage

DEPARTMENT_WRITERS = (Role.ENTERPRISE_ADMIN,)
EMPLOYEE_WRITERS = (Role.ENTERPRISE_ADMIN, Role.HR)
PRIVILEGED_ROLES = frozenset({Role.ENTERPRISE_ADMIN, Role.TAG_ADMIN})
MOVE_POSITIONS = ("first-child", "last-child", "left", "right")
ORDER_STEP = 10

_UNSET = object()


# ---------------------------------------------------------------- helpers


def _require(actor: Actor, roles: Iterable[str], message: str) -> None:
    if not actor.can_write:
        raise NotAllowed(_("只读的 API 密钥不能写入。"), code="read_only")
    if not actor.has_role(*roles):
        raise NotAllowed(message)


def _full_clean(obj, exclude: Iterable[str] | None = None) -> None:
    """`full_clean()` with Django's errors turned into our ValidationFailed (field → messages)."""
    try:
        obj.full_clean(exclude=exclude)
    except DjangoValidationError as exc:
        details = exc.message_dict
        field, messages = next(iter(details.items()))
        prefix = "" if field == "__all__" else f"{field}: "
        raise ValidationFailed(prefix + messages[0], details=details) from exc


def _clean_name(name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise ValidationFailed(_("名称不能为空。"), details={"name": [_("名称不能为空。")]})
    return name


# ---------------------------------------------------------------- departments


def _siblings(parent_id: int | None):
    return Department.objects.filter(parent_id=parent_id).order_by("tree_id", "lft")


def _renumber_children(parent_id: int | None) -> None:
    """Set siblings' `order` to 10, 20, 30… in tree order, so `order` always matches position."""
    changed = []
    for index, dep in enumerate(_siblings(parent_id).only("pk", "order")):
        wanted = (index + 1) * ORDER_STEP
        if dep.order != wanted:
            dep.order = wanted
            changed.append(dep)
    if changed:
        # A plain UPDATE: the positions are already right, mptt must not re-sort anything.
        Department.objects.bulk_update(changed, ["order"])


def _is_self_or_descendant(candidate: Department, department: Department) -> bool:
    """Is `candidate` the department itself or below it (fresh tree fields, not stale ones)?"""
    fresh = Department.objects.filter(pk=department.pk).values("tree_id", "lft", "rght").first()
    cand = Department.objects.filter(pk=candidate.pk).values("tree_id", "lft", "rght").first()
    if fresh is None or cand is None:
        return False
    return cand["tree_id"] == fresh["tree_id"] and fresh["lft"] <= cand["lft"] <= fresh["rght"]


def _cycle_error(department: Department, parent: Department) -> ValidationFailed:
    message = _("不能把部门“%(dep)s”移到它自己或它的下级部门“%(parent)s”之下。") % {
        "dep": department.name,
        "parent": parent.name,
    }
    return ValidationFailed(message, details={"parent": [message]}, code="cycle")


@transaction.atomic
def department_create(
    *,
    actor: Actor,
    name: str,
    parent: Department | None = None,
    order: int | None = None,
    external_id: str | None = None,
) -> Department:
    """Add a department under `parent` (a root when None). Without `order` it goes last."""
    _require(actor, DEPARTMENT_WRITERS, _("只有企业管理员可以管理部门。"))
    with tree_lock("department"):
        if order is None:
            last = _siblings(parent.pk if parent else None).order_by("-order").values_list("order", flat=True).first()
            order = (last or 0) + ORDER_STEP
        department = Department(name=_clean_name(name), parent=parent, order=order, external_id=external_id or None)
        _full_clean(department, exclude=["lft", "rght", "tree_id", "level"])
        department.save()
    return department


@transaction.atomic
def department_update(
    *,
    actor: Actor,
    department: Department,
    name: str = _UNSET,
    parent: Department | None = _UNSET,
    order: int = _UNSET,
    external_id: str | None = _UNSET,
) -> Department:
    """Change a department; a new `parent` moves it (with its subtree) there. Cycles are refused."""
    _require(actor, DEPARTMENT_WRITERS, _("只有企业管理员可以管理部门。"))
    with tree_lock("department"):
        department.refresh_from_db()
        if name is not _UNSET:
            department.name = _clean_name(name)
        if external_id is not _UNSET:
            department.external_id = external_id or None
        if order is not _UNSET:
            department.order = order
        if parent is not _UNSET and (parent.pk if parent else None) != department.parent_id:
            if parent is not None and _is_self_or_descendant(parent, department):
                raise _cycle_error(department, parent)
            department.parent = parent
        _full_clean(department, exclude=["lft", "rght", "tree_id", "level"])
        department.save()
    return department


@transaction.atomic
def department_move(*, actor: Actor, department: Department, target: Department, position: str) -> Department:
    """Drag and drop: put `department` relative to `target` (first-child, last-child, left, right).

    Afterwards the `order` of the siblings it left and joined is renumbered to match their
    position, so a later save (which sorts by `order`) keeps what the user dragged.
    """
    _require(actor, DEPARTMENT_WRITERS, _("只有企业管理员可以管理部门。"))
    if position not in MOVE_POSITIONS:
        raise ValidationFailed(
            _("未知的位置“%(pos)s”。") % {"pos": position}, details={"position": list(MOVE_POSITIONS)}
        )
    with tree_lock("department"):
        department.refresh_from_db()
        target.refresh_from_db()
        old_parent_id = department.parent_id
        new_parent = target if position.endswith("child") else target.parent
        if target.pk == department.pk or (new_parent is not None and _is_self_or_descendant(new_parent, department)):
            raise _cycle_error(department, new_parent or target)
        Department._tree_manager.move_node(department, target, position)
        _renumber_children(department.parent_id)
        if old_parent_id != department.parent_id:
            _renumber_children(old_parent_id)
        department.refresh_from_db()
    return department


@transaction.atomic
def department_delete(*, actor: Actor, department: Department) -> None:
    """Remove an unused department. One that still has sub-departments, members, managers or
    is in a tag group's scope is refused (dropping it from a scope would widen who sees the group)."""
    _require(actor, DEPARTMENT_WRITERS, _("只有企业管理员可以管理部门。"))
    with tree_lock("department"):
        in_use = department_usage(department)
        if in_use:
            raise Conflict(
                _("部门“%(dep)s”仍在使用中（%(what)s），不能删除。")
                % {"dep": department.name, "what": join_list(in_use)},
                details={"in_use": in_use},
                code="in_use",
            )
        department.delete()


@transaction.atomic
def department_tree_rebuild() -> int:
    """Recompute the tree fields from `parent`; returns the number of departments."""
    with tree_lock("department"):
        Department.objects.rebuild()
    return Department.objects.count()


# ---------------------------------------------------------------- employees


def employee_check_roles(*, actor: Actor, employee: Employee | None, roles: Iterable[str]) -> set[str]:
    """Validate a new role set for `employee` (None: a new one) as `actor` would set it.

    Only enterprise admins grant or take away enterprise admin and tag admin, and only they
    may change an enterprise admin. Returns the roles as a set.
    """
    roles = set(roles)
    unknown = roles - set(Role.values)
    if unknown:
        raise ValidationFailed(
            _("未知的角色：%(roles)s") % {"roles": ", ".join(sorted(unknown))}, details={"roles": sorted(unknown)}
        )
    if actor.has_role(Role.ENTERPRISE_ADMIN):
        return roles
    before = employee.roles if employee is not None and employee.pk else set()
    touched = (roles ^ before) & PRIVILEGED_ROLES
    if touched:
        names = join_list(Role(r).label for r in sorted(touched))
        raise NotAllowed(
            _("只有企业管理员可以授予或取消这些角色：%(roles)s") % {"roles": names}, details={"roles": sorted(touched)}
        )
    return roles


def employee_changed_fields(employee: Employee, **values) -> set[str]:
    """Which of `values` (userid, name, departments, managed_departments, roles, status,
    password) would change `employee`; `_UNSET`/missing ones are not changes."""
    changed = set()
    for field, value in values.items():
        if value is _UNSET:
            continue
        if field == "password":
            if value:
                changed.add(field)
        elif field in ("departments", "managed_departments"):
            new_ids = {d if isinstance(d, int) else d.pk for d in value}
            if new_ids != set(getattr(employee, field).values_list("pk", flat=True)):
                changed.add(field)
        elif field == "roles":
            if set(value) != employee.roles:
                changed.add(field)
        elif field in ("userid", "name"):
            if (value or "").strip() != getattr(employee, field):
                changed.add(field)
        elif value != getattr(employee, field):
            changed.add(field)
    return changed


# Changing these on a privileged account could take it over or widen what it sees.
GUARDED_FIELDS = frozenset({"password", "userid", "departments", "managed_departments", "roles", "status"})


def _check_may_edit(actor: Actor, employee: Employee, changed: Iterable[str] | None = None) -> None:
    """Only enterprise admins change an enterprise admin at all, or the login, password,
    departments, roles or status of a tag admin. `changed` None: the whole account (delete)."""
    if actor.has_role(Role.ENTERPRISE_ADMIN):
        return
    if employee.is_superuser or employee.has_role(Role.ENTERPRISE_ADMIN):
        raise NotAllowed(_("只有企业管理员可以修改企业管理员的账号。"))
    if employee.roles & PRIVILEGED_ROLES and (changed is None or set(changed) & GUARDED_FIELDS):
        raise NotAllowed(_("只有企业管理员可以修改标签管理员的账号、密码、部门、角色或状态。"))


def _set_roles(employee: Employee, roles: set[str]) -> None:
    keep = [g for g in employee.groups.all() if g.name not in Role.values]
    groups = {g.name: g for g in Group.objects.filter(name__in=roles)}
    for role in roles - set(groups):
        groups[role] = Group.objects.create(name=role)
    employee.groups.set(keep + list(groups.values()))
    if hasattr(employee, "_roles_cache"):
        del employee._roles_cache


def _set_status(employee: Employee, status: str) -> None:
    if status not in EmployeeStatus.values:
        raise ValidationFailed(
            _("未知的状态“%(status)s”。") % {"status": status}, details={"status": list(EmployeeStatus.values)}
        )
    if status == employee.status:
        return
    employee.status = status
    if status == EmployeeStatus.ACTIVE:
        employee.is_active = True
        employee.departed_at = None
    else:
        employee.is_active = False
        employee.departed_at = timezone.now()


def _set_password(employee: Employee, password: str | None) -> None:
    if not password:
        return
    try:
        validate_password(password, employee)
    except DjangoValidationError as exc:
        raise ValidationFailed(exc.messages[0], details={"password": exc.messages}) from exc
    employee.set_password(password)


@transaction.atomic
def employee_create(
    *,
    actor: Actor,
    userid: str,
    name: str,
    departments: Iterable[Department] = (),
    managed_departments: Iterable[Department] = (),
    roles: Iterable[str] = (Role.STAFF,),
    status: str = EmployeeStatus.ACTIVE,
    password: str | None = None,
) -> Employee:
    """Add an employee. Without a password the account cannot log in until one is set."""
    _require(actor, EMPLOYEE_WRITERS, _("只有企业管理员和人事可以管理成员。"))
    roles = employee_check_roles(actor=actor, employee=None, roles=roles)
    employee = Employee(userid=(userid or "").strip(), name=(name or "").strip())
    _set_status(employee, status)
    if password:
        _set_password(employee, password)
    else:
        employee.set_unusable_password()
    _full_clean(employee, exclude=["password"])
    employee.save()
    employee.departments.set(departments)
    employee.managed_departments.set(managed_departments)
    _set_roles(employee, roles)
    return employee


@transaction.atomic
def employee_update(
    *,
    actor: Actor,
    employee: Employee,
    userid: str = _UNSET,
    name: str = _UNSET,
    departments: Iterable[Department] = _UNSET,
    managed_departments: Iterable[Department] = _UNSET,
    roles: Iterable[str] = _UNSET,
    status: str = _UNSET,
    password: str | None = _UNSET,
) -> Employee:
    """Change an employee. Marking them departed stops their login and API use at once."""
    _require(actor, EMPLOYEE_WRITERS, _("只有企业管理员和人事可以管理成员。"))
    current = Employee.objects.get(pk=employee.pk)
    _check_may_edit(
        actor,
        current,
        employee_changed_fields(
            current,
            userid=userid,
            name=name,
            departments=departments,
            managed_departments=managed_departments,
            roles=roles,
            status=status,
            password=password,
        ),
    )
    if roles is not _UNSET:
        roles = employee_check_roles(actor=actor, employee=current, roles=roles)
    if userid is not _UNSET:
        employee.userid = (userid or "").strip()
    if name is not _UNSET:
        employee.name = (name or "").strip()
    if status is not _UNSET:
        employee.status = current.status
        _set_status(employee, status)
    if password is not _UNSET:
        _set_password(employee, password)
    _full_clean(employee, exclude=["password"])
    employee.save()
    if departments is not _UNSET:
        employee.departments.set(departments)
    if managed_departments is not _UNSET:
        employee.managed_departments.set(managed_departments)
    if roles is not _UNSET:
        _set_roles(employee, roles)
    return employee


@transaction.atomic
def _employee_in_use(employee: Employee) -> Conflict:
    return Conflict(
        _("成员“%(emp)s”还有客户或历史记录，不能删除；请将其标记为离职并办理离职继承。") % {"emp": employee},
        code="in_use",
    )


def employee_check_delete(*, actor: Actor, employee: Employee) -> None:
    """The checks `employee_delete` makes, without writing: for the admin, which must show the
    refusal before it offers to delete. Raises NotAllowed or Conflict (customers or history)."""
    _require(actor, EMPLOYEE_WRITERS, _("只有企业管理员和人事可以管理成员。"))
    _check_may_edit(actor, employee)
    try:
        Collector(using=router.db_for_write(Employee)).collect([employee])
    except (ProtectedError, RestrictedError) as exc:
        raise _employee_in_use(employee) from exc


def employee_delete(*, actor: Actor, employee: Employee) -> None:
    """Remove an employee who has no history. One with customers, notes or audit entries is
    refused: mark them departed and hand their customers over instead."""
    _require(actor, EMPLOYEE_WRITERS, _("只有企业管理员和人事可以管理成员。"))
    _check_may_edit(actor, employee)
    try:
        with transaction.atomic():
            employee.delete()
    except ProtectedError as exc:
        raise _employee_in_use(employee) from exc


# ---------------------------------------------------------------- API clients


@transaction.atomic
def api_client_create(*, actor: Actor, name: str, read_only: bool = False) -> tuple[ApiClient, str]:
    """A new API client and its key, in clear text this one time (only a hash is stored)."""
    _require(actor, (Role.ENTERPRISE_ADMIN,), _("只有企业管理员可以管理 API 客户端。"))
    client = ApiClient(name=_clean_name(name), read_only=read_only)
    key = client.set_new_key()
    _full_clean(client)
    client.save()
    return client, key


@transaction.atomic
def api_client_revoke(*, actor: Actor, client: ApiClient) -> ApiClient:
    """Revoke a key: calls with it answer 401 from now on. Revoking twice changes nothing."""
    _require(actor, (Role.ENTERPRISE_ADMIN,), _("只有企业管理员可以管理 API 客户端。"))
    if client.revoked_at is None:
        client.revoked_at = timezone.now()
        client.save(update_fields=["revoked_at"])
    return client
