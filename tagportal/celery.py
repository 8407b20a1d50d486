"""The Celery app. Eager (inline) when no broker is configured, as in the embedded default."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tagportal.settings")

app = Celery("tagportal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
