"""Celery tasks of the org app: thin, ids in, a service call."""

from celery import shared_task

from . import services


@shared_task
def department_tree_rebuild() -> int:
    """Rebuild the department tree's MPTT fields (after an import or a bulk change)."""
    return services.department_tree_rebuild()
