"""Celery tasks of the insights app (thin: a service call)."""

from celery import shared_task


@shared_task(name="insights.refresh_aggregates")
def refresh_aggregates() -> int:
    """Rebuild the 数据看板 aggregates (Celery beat runs it every few minutes); returns the snapshot id."""
    from .services import aggregates_refresh

    return aggregates_refresh().pk
