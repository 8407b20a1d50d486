"""Reads of the org app: who may see which departments and employees, and department helpers."""

from __future__ import annotations

from collections.abc import Iterable

from django.utils.translation import gettext as _

from .actors import Actor
from .models import Department, Employee


def visible_departments(actor: Actor | None):
    """Departments the actor may see: the whole org chart, for every employee and API client
    (as in WeCom's address book). Ordered as the tree."""
    return Department.objects.restrict(actor, "view").order_by("tree_id", "lft")


def visible_employees(actor: Actor | None):
    """Employees the actor may see: everyone, departed included (their status says so)."""
    return Employee.objects.restrict(actor, "view")


def department_member_ids(department_ids: Iterable[int]) -> set[int]:
    """Ids of the employees who are members of exactly these departments (not sub-departments)."""
    return set(
        Employee.departments.through.objects.filter(department_id__in=list(department_ids)).values_list(
            "employee_id", flat=True
        )
    )


def department_paths(queryset=None) -> dict[int, str]:
    """`{id: "总部 / 华北区 / 北京分公司 / 销售部"}` for every department, in one query."""
    paths: dict[int, str] = {}
    for dep in Department.objects.order_by("tree_id", "lft").only("id", "name", "parent_id"):
        paths[dep.pk] = f"{paths[dep.parent_id]} / {dep.name}" if dep.parent_id in paths else dep.name
    wanted = set(queryset.values_list("pk", flat=True)) if queryset is not None else None
    return {pk: path for pk, path in paths.items() if wanted is None or pk in wanted}


def department_usage(department: Department) -> list[str]:
    """What still uses a department (names of the related kinds): sub-departments, members,
    managers, tag-group scopes… An empty list means it may be deleted."""
    in_use = []
    for rel in Department._meta.related_objects:
        accessor = rel.get_accessor_name()
        if accessor and getattr(department, accessor).exists():
            label = rel.field.verbose_name if rel.many_to_many else rel.related_model._meta.verbose_name
            if rel.related_model is Department:
                label = _("下级部门")
            in_use.append(str(label))
    return in_use
