"""Writes of the org app: departments, employees, API clients. Keyword-only, atomic."""

from __future__ import annotations

from django.db import transaction

from tagportal.locks import tree_lock

from .models import Department


@transaction.atomic
def department_tree_rebuild() -> int:
    """Recompute the tree fields from `parent`; returns the number of departments."""
    with tree_lock("department"):
        Department.objects.rebuild()
    return Department.objects.count()
