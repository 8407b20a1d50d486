"""Celery tasks of the channels app (thin: a service call)."""

from celery import shared_task

from .services import codes_refresh_receivers


@shared_task(name="channels.refresh_receivers")
def refresh_receivers() -> int:
    """Periodic (every few minutes): a new Asia/Shanghai day restores receivers who reached the daily
    limit, working hours start and end; changes fire the receivers-changed hook (WeCom's contact way)."""
    return codes_refresh_receivers()
