#!/usr/bin/env python
"""Benchmark: 离职继承 of 10,000 customers with full portraits, on PostgreSQL with a real worker.

    .venv/bin/python bench/transfer.py [--customers 10000] [--redis redis://127.0.0.1:6379/6]

Builds a fresh database `tp_bench_transfer` (set-based: bulk inserts), then:

1. the real path: `transfer_start` (HR, keep portrait, two inheritors) queues a TRANSFER job that a
   `celery -A tagportal worker` subprocess runs; timed from the call to the job's success;
2. the per-row way on a second departed employee's customers of the same shape: an ORM loop per
   customer (get the relations, save each, get-or-create each personal tag and tagging, one audit
   row and one item update at a time), in this process;

and prints both times and their ratio, after checking that both ended in the same state.
Each departing employee's customers: a relation with remark and description, 4 personal tags,
3 notes, 2 chat messages; one inheritor already follows 10% of them (merges) and already owns
two personal tags of the same names (merged by name).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from _common import start_worker as start_bench_worker

ROOT = Path(__file__).resolve().parent.parent
DB_NAME = "tp_bench_transfer"
PG = "postgres://postgres@127.0.0.1:5432"


def setup_django(redis_url: str) -> None:
    os.environ["DATABASE_URL"] = f"{PG}/{DB_NAME}"
    os.environ["CELERY_BROKER_URL"] = redis_url
    os.environ["CELERY_TASK_ALWAYS_EAGER"] = "false"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tagportal.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def fresh_database() -> None:
    import psycopg

    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DB_NAME}")


TAG_NAMES = ["高意向", "VIP", "喜欢周末沟通", "偏好电话联系", "已报价", "续保", "家庭保单", "转介绍"]


def build(n: int):
    """Employees, and two departing employees with `n` customers each (full portraits). Set-based."""
    from django.contrib.auth.models import Group

    from customers.models import Customer, FollowRelation, Message, Note, PersonalTagging
    from org.models import Employee
    from tags.models import PersonalTag

    hr = Employee.objects.create_user("hr", "pass-1234", name="人事")
    hr.groups.add(Group.objects.get(name="hr"))
    people = {u: Employee.objects.create_user(u, "pass-1234", name=u) for u in ("fast", "slow", "li", "wang",
                                                                              "li2", "wang2")}
    for heir in ("li", "li2"):
        PersonalTag.objects.bulk_create([PersonalTag(owner=people[heir], name=name.lower())
                                         for name in ("VIP", "续保")])
    sets = {}
    for departing, heir in (("fast", "li"), ("slow", "li2")):
        emp = people[departing]
        customers = Customer.objects.bulk_create(
            [Customer(external_userid=f"{departing}-{i:06d}", name=f"客户{i}") for i in range(n)], batch_size=5000
        )
        FollowRelation.objects.bulk_create(
            [FollowRelation(customer=c, employee=emp, remark=f"备注{i}", description=f"描述{i}", add_way=1,
                            state="poster") for i, c in enumerate(customers)], batch_size=5000)
        FollowRelation.objects.bulk_create(
            [FollowRelation(customer=c, employee=people[heir], description="已有跟进")
             for c in customers[: n // 10]], batch_size=5000)
        tags = PersonalTag.objects.bulk_create([PersonalTag(owner=emp, name=name) for name in TAG_NAMES])
        PersonalTagging.objects.bulk_create(
            [PersonalTagging(customer=c, personal_tag=tags[(i + k) % len(tags)])
             for i, c in enumerate(customers) for k in range(4)], batch_size=10000)
        Note.objects.bulk_create(
            [Note(customer=c, author=emp, text=f"第{k}次跟进") for c in customers for k in range(3)], batch_size=10000)
        Message.objects.bulk_create(
            [Message(msgid=f"{departing}-{c.pk}-{k}", customer=c, employee=emp, direction="in", content="想买保险")
             for c in customers for k in range(2)], batch_size=10000)
        sets[departing] = [c.pk for c in customers]
    return hr, people, sets


def start_worker(redis_url: str) -> subprocess.Popen:
    env = dict(os.environ, DATABASE_URL=f"{PG}/{DB_NAME}", CELERY_BROKER_URL=redis_url,
               CELERY_TASK_ALWAYS_EAGER="false")
    try:
        return start_bench_worker(env, name="bench-transfer", log=ROOT / ".bench-transfer-worker.log")
    except RuntimeError as exc:
        raise SystemExit(str(exc)) from exc


def fast_way(hr, people) -> tuple[float, object]:
    from django.db import transaction

    from customers.models import Job, JobStatus
    from customers.transfers import transfer_start
    from org.actors import Actor

    started = time.perf_counter()
    with transaction.atomic():
        transfer = transfer_start(actor=Actor(employee=hr), from_employee=people["fast"],
                                  to_employees=[people["li"], people["wang"]], keep_portrait=True)
    while True:
        job = Job.objects.get(pk=transfer.job_id)
        if job.status in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED):
            break
        time.sleep(0.05)
    elapsed = time.perf_counter() - started
    if job.status != JobStatus.SUCCEEDED:
        raise SystemExit(f"job ended {job.status}: {job.log[-1:]}")
    return elapsed, job


def per_row_way(hr, people) -> float:
    """The same hand-over, the naive way: an ORM loop per customer, one statement per row."""
    from django.db import transaction
    from django.utils import timezone

    from customers.models import (
        FollowRelation,
        PersonalTagging,
        RelationStatus,
        TagEvent,
        Transfer,
        TransferItem,
        TransferOutcome,
    )
    from tags.models import PersonalTag

    departing, heirs = people["slow"], [people["li2"], people["wang2"]]
    started = time.perf_counter()
    with transaction.atomic():
        transfer = Transfer.objects.create(from_employee=departing, created_by_employee=hr)
        transfer.to_employees.set(heirs)
        relations = FollowRelation.objects.filter(employee=departing, status=RelationStatus.ACTIVE).order_by(
            "customer_id")
        for n, rf in enumerate(relations):
            heir = heirs[n % 2]
            item = TransferItem.objects.create(transfer=transfer, customer_id=rf.customer_id, to_employee=heir)
            rt = FollowRelation.objects.filter(customer_id=rf.customer_id, employee=heir).first()
            merged = rt is not None
            if rt is None:
                rt = FollowRelation(customer_id=rf.customer_id, employee=heir, added_at=rf.added_at,
                                    add_way=rf.add_way, state=rf.state)
            rt.remark = rt.remark or rf.remark
            rt.description = f"{rt.description}\n{rf.description}" if rt.description else rf.description
            rt.save()
            rf.status, rf.transferred_to, rf.transferred_at, rf.portrait_kept = (
                RelationStatus.TRANSFERRED, heir, timezone.now(), True)
            rf.save()
            for pt in PersonalTagging.objects.filter(customer_id=rf.customer_id, personal_tag__owner=departing
                                                     ).select_related("personal_tag"):
                tag = PersonalTag.objects.filter(owner=heir, name__iexact=pt.personal_tag.name).first()
                if tag is None:
                    tag = PersonalTag.objects.create(owner=heir, name=pt.personal_tag.name)
                _tagging, created = PersonalTagging.objects.get_or_create(personal_tag=tag,
                                                                          customer_id=rf.customer_id)
                if created:
                    TagEvent.objects.create(customer_id=rf.customer_id, personal_tag=tag, tag_name=tag.name,
                                            action="add", source="transfer", actor_employee=hr)
            item.outcome = TransferOutcome.MERGED if merged else TransferOutcome.MOVED
            item.done_at = timezone.now()
            item.save()
        transfer.finished_at = timezone.now()
        transfer.save()
    return time.perf_counter() - started


def state_of(departing, heirs) -> dict:
    from customers.models import FollowRelation, PersonalTagging, RelationStatus, TagEvent

    return {
        "archived": FollowRelation.objects.filter(employee=departing, status=RelationStatus.TRANSFERRED).count(),
        "inherited_active": FollowRelation.objects.filter(employee__in=heirs, status=RelationStatus.ACTIVE).count(),
        "inherited_taggings": PersonalTagging.objects.filter(personal_tag__owner__in=heirs).count(),
        "audit_rows": TagEvent.objects.filter(personal_tag__owner__in=heirs, source="transfer").count(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--redis", default=os.environ.get("TAGPORTAL_REDIS_URL", "redis://127.0.0.1:6379/6"))
    args = parser.parse_args()

    fresh_database()
    setup_django(args.redis)
    import redis
    from django.core.management import call_command

    redis.Redis.from_url(args.redis).flushdb()
    call_command("migrate", verbosity=0)
    t = time.perf_counter()
    hr, people, _sets = build(args.customers)
    from customers.models import Note, PersonalTagging

    print(f"data: {args.customers} customers x 2 departing employees, "
          f"{PersonalTagging.objects.count()} personal taggings, {Note.objects.count()} notes "
          f"(built in {time.perf_counter() - t:.1f}s)", flush=True)

    worker = start_worker(args.redis)
    try:
        fast, job = fast_way(hr, people)
    finally:
        os.killpg(worker.pid, 15)
        worker.wait(30)
    print(f"set-based job on a real worker: {fast:.2f}s  ({args.customers / fast:,.0f} customers/s; "
          f"outcomes {job.counts})", flush=True)

    slow = per_row_way(hr, people)
    print(f"per-row ORM loop:               {slow:.2f}s  ({args.customers / slow:,.0f} customers/s)", flush=True)

    fast_state = state_of(people["fast"], [people["li"], people["wang"]])
    slow_state = state_of(people["slow"], [people["li2"], people["wang2"]])
    print(f"end state  set-based {fast_state}\n           per-row   {slow_state}")
    if fast_state != slow_state:
        raise SystemExit("the two ways disagree")
    print(f"ratio per-row / set-based: {slow / fast:.1f}x   target < 10 s: {'OK' if fast < 10 else 'MISSED'}")


if __name__ == "__main__":
    main()
