"""`python manage.py wecom_sync [--org] [--tags] [--customers] [--no-wait]`: the full pull from WeCom.

Without a phase option every phase runs (departments and employees, corp tags, customers with their
follow relations). It is a job (任务, kind 企业微信同步) with the same live progress bar as the
status page's button; with a worker running the command follows its progress until it ends (or
returns at once with --no-wait); without a broker it runs inline.
"""

from __future__ import annotations

import json
import time

from django.core.management.base import BaseCommand, CommandError

from customers.models import JobStatus
from org.actors import Actor


class Command(BaseCommand):
    help = "Full pull from WeCom: departments, employees, corp tags, customers (a job with progress)."

    def add_arguments(self, parser):
        parser.add_argument("--org", action="store_true", help="departments and employees")
        parser.add_argument("--tags", action="store_true", help="corp tags (企业客户标签)")
        parser.add_argument("--customers", action="store_true", help="customers and their follow relations")
        parser.add_argument("--no-wait", action="store_true", help="start the job and return")

    def handle(self, *args, **options):
        from wecom import conf
        from wecom.pull import wecom_sync_start

        if not conf.api_configured():
            raise CommandError("WeCom is not configured: set WECOM_CORP_ID and WECOM_SECRET (see README).")
        phases = {k: options[k] for k in ("org", "tags", "customers")}
        if not any(phases.values()):
            phases = dict.fromkeys(phases, True)
        job = wecom_sync_start(actor=Actor(label="wecom_sync"), **phases)
        self.stdout.write(f"job #{job.pk} ({', '.join(k for k, v in phases.items() if v)})")
        if options["no_wait"]:
            return
        last = None
        while True:
            job.refresh_from_db()
            line = f"{job.get_status_display()} {job.done}/{job.total}"
            if line != last:
                self.stdout.write(line)
                last = line
            if job.status in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED):
                break
            time.sleep(0.5)
        self.stdout.write(json.dumps(job.counts, ensure_ascii=False, sort_keys=True))
        if job.status != JobStatus.SUCCEEDED:
            raise CommandError(f"job #{job.pk} {job.status}: {(job.log or [{}])[-1].get('message', '')}")
        return None



