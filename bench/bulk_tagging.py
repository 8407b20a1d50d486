#!/usr/bin/env python
"""Benchmark: bulk tagging on PostgreSQL with 1,000,000 customers.

    .venv/bin/python bench/bulk_tagging.py [--copy] [--db tp_bench_bulk] [--template tp_bench]
        [--redis redis://127.0.0.1:6379/5] [--ops 10000] [--tags 10] [--orm-ops 10000] [--port 8765]
        [--repeat 1] [--skip-http] [--skip-job] [--cpu]

`--copy` (re)creates `--db` from the template database (CUSTOMERS' 1M-customer `tp_bench`) with
`createdb -T`, then migrates it. Then:

1. `POST /api/v1/tagging/bulk/` with `--ops` explicit operations adding `--tags` tags each
   (10,000 × 10 = 100,000 taggings and 100,000 audit rows) over real HTTP to a live
   `manage.py runserver --noreload` subprocess (DEBUG off) on the copy, timed end to end from the
   client (request sent → JSON answer read), `--repeat` times (each round with `--tags` new tags on
   the same customers; median and best printed: the box is shared, one figure says little); then
   the per-row ORM way in this process on another `--orm-ops` customers with the same tags:
   `Tagging.objects.get_or_create` per tagging plus one `TagEvent` per created tagging, in one
   transaction; prints both times and the ratio (per tagging, against the median).
1b. `--cpu`: the same call `--repeat` times in this process (Django's test client through the whole view,
   one database connection kept), on the last `--ops` customers, measured in CPU seconds: this process's
   and its PostgreSQL backend's (from /proc). On a shared box the wall time depends on everyone's load;
   the CPU seconds do not, and on an idle machine the call takes about their sum.
2. A filter job (`bulk_tagging_start` with an empty filter = all customers) adding one tag to every
   customer, run by a `celery -A tagportal worker --pool=solo` subprocess on the copy and Redis;
   timed from the call to the job's `finished_at`, while this process samples the job row every
   20 ms and reports the largest gap between progress (`done`) updates and between heartbeats.

Every figure is printed with the machine's load average (1 min) when it was taken.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from _common import copy_database, cpu_seconds, load, run, setup_django, start_worker, wait_http

ROOT = Path(__file__).resolve().parent.parent


def new_tags(n_tags: int, suffix: str = ""):
    """A fresh tag group with `n_tags` tags."""
    from tags.models import Tag, TagGroup

    group = TagGroup.objects.create(name=f"压测{time.strftime('%H%M%S')}{suffix}")
    return [Tag.objects.create(group=group, name=f"批量{i}", order=i) for i in range(n_tags)]


def prepare(n_tags: int):
    """A fresh tag group with `n_tags` tags for the HTTP/ORM runs and one for the job; an API key."""
    from org.models import ApiClient
    from tags.models import Tag

    stamp = time.strftime("%H%M%S")
    tags = new_tags(n_tags)
    job_tag = Tag.objects.create(group=tags[0].group, name="全量", order=n_tags)
    client = ApiClient(name=f"bench-{stamp}")
    key = client.set_new_key()
    client.save()
    return client, key, tags, job_tag


def bench_http(env: dict, key: str, tags, ops: int, orm_ops: int, port: int, repeat: int = 1) -> None:
    from django.db import connection, transaction
    from django.utils import timezone

    from customers.models import Customer, TagAction, TagEvent, Tagging, TagSource

    ids = list(Customer.objects.order_by("pk").values_list("pk", flat=True)[: ops + orm_ops])
    http_ids, orm_ids = ids[:ops], ids[ops:]
    tag_ids = [t.pk for t in tags]
    body = json.dumps({"operations": [{"customer": c, "add": tag_ids} for c in http_ids]}).encode()
    print(f"\n[1] POST tagging/bulk/: {len(http_ids):,} operations × {len(tag_ids)} tags "
          f"= {len(http_ids) * len(tag_ids):,} taggings; body {len(body) / 1e6:.1f} MB")
    if not port:
        import socket

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", "--noreload", "--nothreading", f"127.0.0.1:{port}"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_http(f"{base}/api/v1/jobs/")
        if server.poll() is not None:
            raise RuntimeError(f"runserver exited (port {port} taken?)")
        print(f"  live server: manage.py runserver --noreload --nothreading 127.0.0.1:{port} (DEBUG off)")
        # Warm-up call (imports, first connection): one tagging on a customer outside both sets.
        warm = json.dumps({"operations": [{"customer": ids[-1] + 1, "add": [tag_ids[0]]}]}).encode()
        post(f"{base}/api/v1/tagging/bulk/", warm, key, allow_error=True)
        times = []
        for round_ in range(repeat):
            if round_:  # new tags, same customers: every round adds 100,000 taggings
                round_tags = [t.pk for t in new_tags(len(tag_ids), f"-{round_}")]
                round_body = json.dumps({"operations": [{"customer": c, "add": round_tags} for c in http_ids]}).encode()
            else:
                round_tags, round_body = tag_ids, body
            before = load()
            started = time.perf_counter()
            status, answer = post(f"{base}/api/v1/tagging/bulk/", round_body, key)
            seconds = time.perf_counter() - started
            times.append(seconds)
            print(f"  HTTP {status} {answer} in {seconds:.3f} s "
                  f"({len(http_ids) * len(round_tags) / seconds:,.0f} taggings/s; {before})", flush=True)
            assert answer["added"] == len(http_ids) * len(round_tags), answer
            assert TagEvent.objects.filter(customer_id__in=http_ids[:100], tag_id__in=round_tags,
                                           source=TagSource.API).count() == 100 * len(round_tags)
            if not round_:
                started = time.perf_counter()
                status, again = post(f"{base}/api/v1/tagging/bulk/", body, key)
                print(f"  same call again (all unchanged): HTTP {status} {again} in "
                      f"{time.perf_counter() - started:.3f} s")
        http_seconds = sorted(times)[len(times) // 2]
        if repeat > 1:
            print(f"  {repeat} rounds: median {http_seconds:.3f} s, best {min(times):.3f} s, worst {max(times):.3f} s")
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(10)

    if not orm_ids:
        return
    print(f"  per-row ORM way: {len(orm_ids):,} customers × {len(tag_ids)} tags "
          "(get_or_create per tagging + one TagEvent per change, one transaction)")
    names = {t.pk: t.name for t in tags}
    started = time.perf_counter()
    with transaction.atomic():
        for customer_id in orm_ids:
            for tag_id in tag_ids:
                _obj, created = Tagging.objects.get_or_create(customer_id=customer_id, tag_id=tag_id)
                if created:
                    TagEvent.objects.create(customer_id=customer_id, tag_id=tag_id, tag_name=names[tag_id],
                                            action=TagAction.ADD, source=TagSource.API, actor_label="bench-orm",
                                            created_at=timezone.now())
    orm_seconds = time.perf_counter() - started
    per_tagging_orm = orm_seconds / (len(orm_ids) * len(tag_ids))
    per_tagging_http = http_seconds / (len(http_ids) * len(tag_ids))
    print(f"  ORM: {orm_seconds:.2f} s ({len(orm_ids) * len(tag_ids) / orm_seconds:,.0f} taggings/s; {load()})")
    print(f"  RATIO per tagging: ORM / bulk API (median) = {per_tagging_orm / per_tagging_http:.1f}×"
          f"  (target: 100,000 taggings < 1.5 s → {'MET' if http_seconds < 1.5 else 'MISSED'}: {http_seconds:.3f} s)")
    connection.close()


def bench_cpu(key: str, n_tags: int, ops: int, repeat: int) -> None:
    """The same call in this process (Django's test client, the full view), timed in CPU seconds: this
    process's (parsing, validation, the view) and the database backend's (read from /proc: the
    server runs here), for figures that hold on a shared box where wall time depends on the load."""
    from django.core import signals
    from django.db import close_old_connections, connection
    from django.test import Client

    from customers.models import Customer

    signals.request_started.disconnect(close_old_connections)  # keep one connection: one backend to read
    signals.request_finished.disconnect(close_old_connections)
    ids = list(Customer.objects.order_by("-pk").values_list("pk", flat=True)[:ops])  # not the HTTP part's
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]

    def backend_cpu() -> float:
        return cpu_seconds(backend)

    client = Client()
    print(f"\n[1b] the same call in-process, {repeat} rounds, CPU seconds (this process + its database backend)")
    rows = []
    for round_ in range(repeat):
        tags = [t.pk for t in new_tags(n_tags, f"-cpu{round_}")]
        body = json.dumps({"operations": [{"customer": c, "add": tags} for c in ids]})
        before, py0, db0, wall0 = load(), time.process_time(), backend_cpu(), time.perf_counter()
        response = client.post("/api/v1/tagging/bulk/", body, content_type="application/json",
                               HTTP_AUTHORIZATION=f"Bearer {key}")
        wall, py, db = time.perf_counter() - wall0, time.process_time() - py0, backend_cpu() - db0
        assert response.status_code == 200 and response.json()["added"] == len(ids) * len(tags), response.content[:500]
        rows.append((py + db, py, db, wall))
        print(f"  CPU {py + db:.2f} s (Python {py:.2f} + database {db:.2f}), wall {wall:.2f} s ({before})", flush=True)
    rows.sort()
    total, py, db, wall = rows[len(rows) // 2]
    print(f"  median CPU {total:.2f} s (Python {py:.2f} + database {db:.2f}); on an idle machine the call takes about "
          "this plus the commit's disk flush")


def post(url: str, body: bytes, key: str, allow_error: bool = False):
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "Authorization": f"Bearer {key}", "Content-Type": "application/json", "Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=600) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        if allow_error:
            return exc.code, None
        raise RuntimeError(f"HTTP {exc.code}: {exc.read()[:2000]!r}") from exc


def start_bench_worker(env: dict, redis_url: str) -> subprocess.Popen:
    import redis

    redis.Redis.from_url(redis_url).flushdb()
    return start_worker(env, name="bench-bulk", log=ROOT / ".bench-bulk-worker.log")


def bench_job(env: dict, redis_url: str, client, job_tag) -> None:
    from django.db import connection

    from customers.jobs import bulk_tagging_start
    from customers.models import Customer, Job, JobStatus, Tagging
    from org.actors import Actor

    total = Customer.objects.count()
    print(f"\n[2] filter job: add one tag to all {total:,} customers, real worker (solo pool) on Redis {redis_url} "
          f"({load()})")
    worker = start_bench_worker(env, redis_url)
    try:
        started_wall = time.time()
        started = time.perf_counter()
        job = bulk_tagging_start(actor=Actor(api_client=client), add=[job_tag.pk], source="bulk", filter_params={})
        samples: list[tuple[float, int, float | None]] = []
        while True:
            row = Job.objects.filter(pk=job.pk).values("status", "done", "total", "heartbeat_at", "finished_at",
                                                       "started_at").get()
            now = time.perf_counter() - started
            beat = row["heartbeat_at"].timestamp() if row["heartbeat_at"] else None
            samples.append((now, row["done"], beat))
            if row["status"] in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED):
                break
            if now > 900:
                raise RuntimeError("job did not finish in 15 minutes")
            time.sleep(0.02)
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(20)
    job.refresh_from_db()
    wall = job.finished_at.timestamp() - started_wall
    run_time = (job.finished_at - job.started_at).total_seconds()
    progress_times = [t for (t, d), (_t0, d0) in zip(
        [(s[0], s[1]) for s in samples[1:]], [(s[0], s[1]) for s in samples[:-1]], strict=True) if d != d0]
    first_progress = progress_times[0] if progress_times else None
    gaps = [b - a for a, b in zip(progress_times, progress_times[1:], strict=False)]
    beats = sorted({s[2] for s in samples if s[2] is not None})
    beat_gaps = [b - a for a, b in zip(beats, beats[1:], strict=False)]
    tagged = Tagging.objects.filter(tag=job_tag).count()
    print(f"  job #{job.pk}: {job.status}, done {job.done:,} / total {job.total:,}, tagged {tagged:,}, "
          f"counts {job.counts}")
    print(f"  call → finished: {wall:.1f} s (worker run {run_time:.1f} s; {job.done / run_time:,.0f} customers/s; "
          f"{load()} at the end)  target < 60 s → {'MET' if wall < 60 else 'MISSED'}")
    print(f"  progress (done) updates seen: {len(progress_times)}, first after {first_progress:.2f} s, "
          f"max gap {max(gaps) if gaps else 0:.2f} s, mean gap {sum(gaps) / len(gaps) if gaps else 0:.2f} s")
    print(f"  heartbeats seen: {len(beats)}, max gap between heartbeats {max(beat_gaps) if beat_gaps else 0:.2f} s")
    connection.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--db", default="tp_bench_bulk")
    parser.add_argument("--template", default="tp_bench")
    parser.add_argument("--copy", action="store_true", help="(re)create --db from --template first")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/5")
    parser.add_argument("--ops", type=int, default=10_000)
    parser.add_argument("--tags", type=int, default=10)
    parser.add_argument("--orm-ops", type=int, default=10_000)
    parser.add_argument("--port", type=int, default=0, help="0: a free port")
    parser.add_argument("--repeat", type=int, default=1, help="HTTP rounds (new tags each)")
    parser.add_argument("--skip-http", action="store_true")
    parser.add_argument("--skip-job", action="store_true")
    parser.add_argument("--cpu", action="store_true", help="also the call in-process, in CPU seconds (1b)")
    args = parser.parse_args()

    if args.copy:
        copy_database(args.db, args.template)
    env = setup_django(args.db, args.redis)
    run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env)
    from customers.models import Customer

    print(f"database {args.db}: {Customer.objects.count():,} customers ({load()})")
    client, key, tags, job_tag = prepare(args.tags)
    if not args.skip_http:
        bench_http(env, key, tags, args.ops, args.orm_ops, args.port, args.repeat)
    if args.cpu:
        bench_cpu(key, args.tags, args.ops, args.repeat)
    if not args.skip_job:
        bench_job(env, args.redis, client, job_tag)
    return 0


if __name__ == "__main__":
    sys.exit(main())
