#!/usr/bin/env python
"""Load: concurrent API users over real HTTP on gunicorn + PostgreSQL (1M customers) + real workers.

    .venv/bin/python bench/load.py [--copy] [--db tp_bench_load] [--template tp_bench]
        [--redis redis://127.0.0.1:6379/5] [--users 50] [--duration 90] [--web-workers 4] [--threads 4]
        [--think 0.5] [--bulk-ops 200] [--mix list=40,portrait=35,edit=20,bulk=5] [--wait 900]
        [--skip-job] [--skip-transfer]

`--copy` (re)creates `--db` from `--template` with `createdb -T` (the benchmark never writes to the
template), then migrates the copy. Everything listens on 127.0.0.1 only:

- web: `gunicorn tagportal.wsgi` with `--web-workers` processes × `--threads` threads (gthread),
  DEBUG off, on the copy;
- two `celery -A tagportal worker --pool=solo` processes consuming every queue the settings define
  (`TAGPORTAL_CELERY_QUEUES`, else `celery`), so the filter job and the transfer run side by side;
- at t = 0, through the API: a filter job (`POST tagging/bulk/ {"filter": {}, "add": [tag]}`) over
  every customer, and an on-the-job transfer (在职继承, keep portrait) of 10,000 customers of the
  busiest employee to two colleagues (`POST transfers/`);
- `--users` threads, each a user with its own API client (a full key), one in five at enterprise
  level and the others acting for an employee (`employee=`: staff on their own customers, managers
  on their teams'), for `--duration` seconds, each request on a new connection, a random pause of
  0…2×`--think` s between requests (mean `--think`), kinds drawn by `--mix`:
  `list` — `GET customers/` with one of the customer-list filters (tags_all/tags_none, tags_any with
  a department, follower, untagged-free text `q`); `portrait` — `GET customers/{id}/` then its
  notes; `edit` — `POST customers/{id}/tags/` (add one tag of a bench group, remove another);
  `bulk` — `POST tagging/bulk/` with `--bulk-ops` explicit operations (two adds, one remove each).

Afterwards (bounded by `--wait`) it waits for the job and the transfer and checks the database:
the job succeeded with done = total = every customer, every customer carries its tag, one audit
row per tagging it added; the transfer succeeded, every one of its 10,000 customers is followed by
one of the inheritors and no longer by the employee, one item per customer.

Prints requests/s, p50/p95/p99 per kind, the errors (any non-2xx answer or failed request), the
job's and the transfer's times, and the load average (1 min) every 10 s. Use your own Redis db:
the bench flushes it.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path
from urllib.parse import quote

from _common import copy_database, load_average, run, setup_django, start_worker

ROOT = Path(__file__).resolve().parent.parent
KINDS = ("list", "portrait", "edit", "bulk")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ---------------------------------------------------------------- the world the users act in


class World:
    """Everything the users need, read once from the copy: keys, tags, filters, customers in reach."""

    def __init__(self, users: int, rng: random.Random):
        from django.db.models import Count

        from customers.models import Customer, FollowRelation, RelationStatus
        from customers.selectors import visible_customers
        from org.models import ApiClient, Employee, EmployeeStatus, Role
        from tags.models import Tag, TagGroup

        stamp = time.strftime("%H%M%S")
        group = TagGroup.objects.create(name=f"负载{stamp}")
        self.tags = [Tag.objects.create(group=group, name=f"负载{i}", order=i).pk for i in range(8)]
        job_group = TagGroup.objects.create(name=f"全量{stamp}")
        self.job_tag = Tag.objects.create(group=job_group, name="全量任务", order=0).pk

        by_name = dict(Tag.objects.values_list("name", "pk"))
        vip, hot, won = by_name.get("VIP客户"), by_name.get("高意向"), by_name.get("已成交")
        any_tags = ",".join(str(t) for t in Tag.objects.order_by("pk").values_list("pk", flat=True)[:3])
        self.filters = [
            f"tags_all={vip},{hot}&tags_none={won}" if vip and hot and won else f"tags_any={any_tags}",
            f"tags_any={any_tags}",
            "q=" + quote("客户"),
            "",
        ]
        active = list(Employee.objects.filter(status=EmployeeStatus.ACTIVE).prefetch_related("groups"))
        staff = [e for e in active if e.has_role(Role.STAFF) and not e.has_role(Role.MANAGER)]
        managers = [e for e in active if e.has_role(Role.MANAGER)]
        counts = dict(FollowRelation.objects.filter(status=RelationStatus.ACTIVE).values("employee_id")
                      .annotate(n=Count("id")).values_list("employee_id", "n"))
        self.max_customer = Customer.objects.order_by("-pk").values_list("pk", flat=True).first()
        self.min_customer = Customer.objects.order_by("pk").values_list("pk", flat=True).first()

        # The transfer: 10,000 customers of the busiest employee to two colleagues (chosen first,
        # so the users leave these customers' follow relations alone as far as edits go).
        busiest = max(staff, key=lambda e: counts.get(e.pk, 0))
        inheritors = sorted((e for e in staff if e.pk != busiest.pk), key=lambda e: -counts.get(e.pk, 0))[:2]
        self.transfer_from, self.transfer_to = busiest, inheritors
        self.transfer_customers = list(
            FollowRelation.objects.filter(employee=busiest, status=RelationStatus.ACTIVE)
            .order_by("customer_id").values_list("customer_id", flat=True)[:10_000]
        )
        moving = set(self.transfer_customers)

        self.users = []
        actors = [None] + [e for e in staff if e.pk != busiest.pk] + managers
        for i in range(users):
            who = None if i % 5 == 0 else actors[1 + (i % (len(actors) - 1))]
            client = ApiClient(name=f"load-{stamp}-{i}")
            key = client.set_new_key()
            client.save()
            if who is None:
                customers = [rng.randint(self.min_customer, self.max_customer) for _ in range(2000)]
            else:
                reach = visible_customers(who).filter(pk__gte=rng.randint(self.min_customer, self.max_customer // 2))
                customers = [c for c in reach.order_by("pk").values_list("pk", flat=True)[:2000] if c not in moving]
            self.users.append({"key": key, "employee": who.userid if who else None, "customers": customers})
        admin_client = ApiClient(name=f"load-{stamp}-admin")
        self.admin_key = admin_client.set_new_key()
        admin_client.save()


# ---------------------------------------------------------------- HTTP


class Client:
    """One request per connection (as many HTTP clients do behind a proxy)."""

    def __init__(self, port: int, key: str, employee: str | None):
        self.port, self.key, self.employee = port, key, employee

    def request(self, method: str, path: str, body: dict | None = None) -> tuple[int, bytes]:
        if self.employee:
            if method == "GET":
                path += ("&" if "?" in path else "?") + f"employee={self.employee}"
            elif body is not None:
                body = {**body, "employee": self.employee}
        headers = {"Authorization": f"Bearer {self.key}", "Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        try:
            conn.request(method, path, body=data, headers=headers)
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))]


class Users:
    """`--users` threads until the deadline; every request recorded as (kind, status, seconds)."""

    def __init__(self, world: World, port: int, args, rng_seed: int = 13):
        self.world, self.port, self.args = world, port, args
        self.records: list[tuple[str, int, float, float]] = []  # kind, status, seconds, finished at
        self.errors: list[str] = []
        self.lock = threading.Lock()
        weights = dict(part.split("=") for part in args.mix.split(","))
        self.kinds = [k for k in KINDS if float(weights.get(k, 0)) > 0]
        self.weights = [float(weights[k]) for k in self.kinds]
        self.seed = rng_seed

    def run(self, deadline: float, t0: float) -> None:
        threads = [threading.Thread(target=self.user, args=(i, deadline, t0), daemon=True)
                   for i in range(len(self.world.users))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    def user(self, index: int, deadline: float, t0: float) -> None:
        rng = random.Random(self.seed * 1000 + index)
        me = self.world.users[index]
        client = Client(self.port, me["key"], me["employee"])
        time.sleep(rng.random() * self.args.think)  # not all at the same instant
        while time.monotonic() < deadline:
            kind = rng.choices(self.kinds, self.weights)[0]
            started = time.monotonic()
            try:
                status = getattr(self, kind)(client, me, rng)
            except Exception as exc:  # noqa: BLE001 - a failed request is an error to report
                status = 0
                with self.lock:
                    self.errors.append(f"{kind}: {type(exc).__name__}: {exc}")
            finished = time.monotonic()
            with self.lock:
                self.records.append((kind, status, finished - started, finished - t0))
            time.sleep(rng.random() * 2 * self.args.think)

    def _check(self, kind: str, status: int, body: bytes, expected=(200,)) -> int:
        if status not in expected:
            with self.lock:
                self.errors.append(f"{kind}: HTTP {status} {body[:300]!r}")
        return status

    def list(self, client: Client, me: dict, rng: random.Random) -> int:
        flt = rng.choice(self.world.filters)
        status, body = client.request("GET", f"/api/v1/customers/?{flt}")
        return self._check("list", status, body)

    def portrait(self, client: Client, me: dict, rng: random.Random) -> int:
        customer = rng.choice(me["customers"])
        status, body = client.request("GET", f"/api/v1/customers/{customer}/")
        if status == 200:
            status, body = client.request("GET", f"/api/v1/customers/{customer}/notes/")
        return self._check("portrait", status, body)

    def edit(self, client: Client, me: dict, rng: random.Random) -> int:
        customer = rng.choice(me["customers"])
        add, remove = rng.sample(self.world.tags, 2)
        status, body = client.request("POST", f"/api/v1/customers/{customer}/tags/",
                                      {"add": [add], "remove": [remove]})
        return self._check("edit", status, body)

    def bulk(self, client: Client, me: dict, rng: random.Random) -> int:
        customers = rng.sample(me["customers"], min(self.args.bulk_ops, len(me["customers"])))
        a, b, c = rng.sample(self.world.tags, 3)
        ops = [{"customer": x, "add": [a, b], "remove": [c]} for x in customers]
        status, body = client.request("POST", "/api/v1/tagging/bulk/", {"operations": ops})
        return self._check("bulk", status, body)


# ---------------------------------------------------------------- the run


def start_web(env: dict, port: int, workers: int, threads: int) -> subprocess.Popen:
    log = open(ROOT / ".bench-load-web.log", "wb")  # noqa: SIM115 - the child keeps its own copy
    web = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "tagportal.wsgi", "--bind", f"127.0.0.1:{port}",
         "--workers", str(workers), "--worker-class", "gthread", "--threads", str(threads),
         "--timeout", "300", "--graceful-timeout", "10", "--log-level", "warning"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if web.poll() is not None:
            raise RuntimeError("gunicorn exited; see .bench-load-web.log")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/api/v1/")
            conn.getresponse().read()
            conn.close()
            return web
        except OSError:
            time.sleep(0.3)
    raise RuntimeError("gunicorn did not answer in 60 s")


def worker_queues() -> str | None:
    from django.conf import settings

    queues = getattr(settings, "TAGPORTAL_CELERY_QUEUES", None)
    return ",".join(queues) if queues else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--db", default="tp_bench_load")
    parser.add_argument("--template", default="tp_bench")
    parser.add_argument("--copy", action="store_true", help="(re)create --db from --template first")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/5")
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--duration", type=float, default=90)
    parser.add_argument("--web-workers", type=int, default=4)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--think", type=float, default=0.5, help="mean pause between a user's requests, s")
    parser.add_argument("--bulk-ops", type=int, default=200)
    parser.add_argument("--mix", default="list=40,portrait=35,edit=20,bulk=5")
    parser.add_argument("--wait", type=float, default=900, help="max s to wait for the job and transfer after")
    parser.add_argument("--skip-job", action="store_true")
    parser.add_argument("--skip-transfer", action="store_true")
    args = parser.parse_args()

    if args.copy:
        copy_database(args.db, args.template)
    env = setup_django(args.db, args.redis)
    run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env)
    import redis
    from django.db import connection

    from customers.models import Customer

    total = Customer.objects.count()
    print(f"database {args.db}: {total:,} customers (load {load_average():.2f})", flush=True)
    world = World(args.users, random.Random(7))
    connection.close()
    print(f"  {len(world.users)} users ({sum(1 for u in world.users if u['employee'] is None)} at enterprise level), "
          f"transfer {len(world.transfer_customers):,} customers of {world.transfer_from.userid} → "
          f"{', '.join(e.userid for e in world.transfer_to)}", flush=True)

    redis.Redis.from_url(args.redis).flushdb()
    port = free_port()
    children: list[subprocess.Popen] = []
    queues = worker_queues()
    try:
        web = start_web(env, port, args.web_workers, args.threads)
        children.append(web)
        print(f"  web: gunicorn tagportal.wsgi on 127.0.0.1:{port}, {args.web_workers} workers × "
              f"{args.threads} threads (gthread)", flush=True)
        worker_env = dict(env)
        for n in range(2):
            children.append(start_worker(worker_env, name=f"bench-load{n}", log=ROOT / f".bench-load-worker{n}.log",
                                         queues=queues))
        print(f"  workers: 2 × celery worker --pool=solo -Q {queues or 'celery'}", flush=True)
        admin = Client(port, world.admin_key, None)
        for user in world.users[:3]:  # warm-up: imports and first connections in the web workers
            Client(port, user["key"], user["employee"]).request("GET", "/api/v1/customers/")

        load_start = load_average()
        t0 = time.monotonic()
        job_id = transfer_id = transfer_job = None
        if not args.skip_job:
            status, body = admin.request("POST", "/api/v1/tagging/bulk/",
                                         {"filter": {}, "add": [world.job_tag]})
            assert status == 202, (status, body[:500])
            job_id = json.loads(body)["job"]
        if not args.skip_transfer:
            status, body = admin.request("POST", "/api/v1/transfers/", {
                "from_employee": world.transfer_from.userid, "to_employees": [e.userid for e in world.transfer_to],
                "keep_portrait": True, "customers": world.transfer_customers, "mark_departed": False})
            assert status == 202, (status, body[:500])
            answer = json.loads(body)
            transfer_id, transfer_job = answer["transfer"], answer["job"]
        print(f"\nt=0: filter job #{job_id} (all {total:,} customers), transfer #{transfer_id} (job #{transfer_job}); "
              f"{args.users} users for {args.duration:.0f} s (load {load_start:.2f})", flush=True)

        loads: list[tuple[float, float]] = [(0.0, load_start)]
        finished: dict[int, float] = {}
        stop = threading.Event()

        def monitor():
            from customers.models import Job, JobStatus

            ends = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)
            next_load = 10.0
            while not stop.is_set():
                now = time.monotonic() - t0
                if now >= next_load:
                    loads.append((now, load_average()))
                    next_load += 10
                for jid in (job_id, transfer_job):
                    if jid and jid not in finished and Job.objects.filter(pk=jid, status__in=ends).exists():
                        finished[jid] = now
                        print(f"  t={now:6.1f} s: job #{jid} ended", flush=True)
                stop.wait(0.5)
            connection.close()

        watcher = threading.Thread(target=monitor, daemon=True)
        watcher.start()
        users = Users(world, port, args)
        users.run(t0 + args.duration, t0)
        elapsed = time.monotonic() - t0
        load_end = load_average()
        print(f"  t={elapsed:6.1f} s: users stopped (load {load_end:.2f})", flush=True)
        wait_until = time.monotonic() + args.wait
        while time.monotonic() < wait_until and any(j and j not in finished for j in (job_id, transfer_job)):
            time.sleep(1)
        stop.set()
        watcher.join(5)
    finally:
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGTERM)
        for child in children:
            try:
                child.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)

    report(users, elapsed, loads, args)
    ok = verify(world, job_id, transfer_id, transfer_job, finished, total)
    return 0 if ok and not users.errors else 1


def report(users: Users, elapsed: float, loads, args) -> None:
    by_kind: dict[str, list[float]] = defaultdict(list)
    statuses: dict[str, Counter] = defaultdict(Counter)
    for kind, status, seconds, _at in users.records:
        by_kind[kind].append(seconds)
        statuses[kind][status] += 1
    n = len(users.records)
    errors = sum(c for counter in statuses.values() for s, c in counter.items() if not 200 <= s < 300)
    print(f"\n{n:,} requests in {elapsed:.1f} s: {n / elapsed:.1f} requests/s, errors {errors} "
          f"({args.users} users, mean pause {args.think} s)")
    header = ["count", "req/s", "p50 ms", "p95 ms", "p99 ms", "max ms"]
    print(f"  {'kind':9s} " + " ".join(f"{h:>8s}" for h in header) + "  statuses")
    for kind in KINDS:
        values = by_kind.get(kind, [])
        if not values:
            continue
        print(f"  {kind:9s} {len(values):8d} {len(values) / elapsed:8.1f} {pct(values, 50) * 1000:8.0f} "
              f"{pct(values, 95) * 1000:8.0f} {pct(values, 99) * 1000:8.0f} {max(values) * 1000:8.0f}  "
              f"{dict(statuses[kind])}")
    print("  load average (1 min): " + ", ".join(f"{at:.0f} s {value:.2f}" for at, value in loads))
    for line in users.errors[:20]:
        print(f"  ERROR {line}")


def verify(world: World, job_id, transfer_id, transfer_job, finished: dict, total: int) -> bool:
    """The job and the transfer finished, and finished right: read back from the database."""
    from django.db.models import Count

    from customers.models import FollowRelation, Job, JobStatus, RelationStatus, TagEvent, Tagging, TransferItem

    ok = True
    print()
    if job_id:
        job = Job.objects.get(pk=job_id)
        tagged = Tagging.objects.filter(tag_id=world.job_tag).count()
        audited = TagEvent.objects.filter(job_id=job_id, tag_id=world.job_tag, action="add").count()
        good = (job.status == JobStatus.SUCCEEDED and job.done == job.total == total and tagged == total
                        and audited == (job.counts or {}).get("added", audited) and not job.failed_items)
        ok &= good
        took = (job.finished_at - job.started_at).total_seconds() if job.finished_at and job.started_at else None
        print(f"filter job #{job_id}: {job.status}, done {job.done:,} / total {job.total:,}, customers tagged "
              f"{tagged:,} of {total:,}, audit rows {audited:,}, counts {job.counts}, failed items "
              f"{job.failed_items}; ended at t={finished.get(job_id, float('nan')):.1f} s "
              f"(worker run {took or float('nan'):.1f} s) → {'OK' if good else 'WRONG'}")
    if transfer_id:
        job = Job.objects.get(pk=transfer_job)
        moving = world.transfer_customers
        still = FollowRelation.objects.filter(employee=world.transfer_from, customer_id__in=moving,
                                              status=RelationStatus.ACTIVE).count()
        inherited = (FollowRelation.objects.filter(customer_id__in=moving, status=RelationStatus.ACTIVE,
                                                   employee__in=world.transfer_to)
                     .values("customer_id").distinct().count())
        items = TransferItem.objects.filter(transfer_id=transfer_id)
        outcomes = dict(items.values("outcome").annotate(n=Count("id")).values_list("outcome", "n"))
        good = (job.status == JobStatus.SUCCEEDED and still == 0 and inherited == len(moving)
                and items.count() == len(moving))
        ok &= good
        took = (job.finished_at - job.started_at).total_seconds() if job.finished_at and job.started_at else None
        print(f"transfer #{transfer_id} (job #{transfer_job}): {job.status}, {len(moving):,} customers: still with "
              f"{world.transfer_from.userid} {still}, with an inheritor {inherited:,}, items {outcomes}; ended at "
              f"t={finished.get(transfer_job, float('nan')):.1f} s (worker run {took or float('nan'):.1f} s) "
              f"→ {'OK' if good else 'WRONG'}")
    return ok


if __name__ == "__main__":
    sys.exit(main())
