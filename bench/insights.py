#!/usr/bin/env python
"""Benchmark: every 数据看板 panel on PostgreSQL with 1,000,000 customers.

    .venv/bin/python bench/insights.py [--db tp_perf_insights] [--copy] [--template tp_perf] [--runs 7]
        [--naive-runs 1] [--viewers admin,manager_bj] [--skip-refresh] [--ended 20000]

`--copy` (re)creates `--db` from the template (the 1M-customer database; see bench/README.md) with
`createdb -T` and migrates it. `--ended N` ends N random follow relations over the last 90 days
(status lost/deleted, set-based) when fewer exist, so "lost per day" has something to count; the
benchmark otherwise only reads (plus the aggregates it refreshes).

Measured (milliseconds, median of `--runs` after one warm-up), for each viewer (the enterprise
admin: every customer; a sales manager: the customers of their departments' members) and each
panel, with the default range (the last 30 days): the panel's selector, as the dashboard's API
view calls it. Then the same figures the naive way, with the ratio:
  - aggregated panels (coverage, untagged, top/unused tags, tagging activity, follow-ups): counted
    exactly from the base tables (taggings, audit, notes, messages) joined with the viewer's visible
    customers, as a first version without the cohort aggregates would;
  - new/lost customers per day, per department, per employee: one exact customer-list count per
    point (`customers_count` with the point's link filter), as a dashboard built on the list would.
Also the refresh of the aggregates (`insights.refresh_aggregates`) once. Target: 300 ms per panel.
The load average is printed with the figures: the machine is shared.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import time
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from _common import copy_database, load, setup_django

ROOT = Path(__file__).resolve().parent.parent
TARGET_MS = 300


def timed(fn, runs: int) -> tuple[float, object]:
    result = fn()  # warm-up
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), result


def end_relations(n: int) -> None:
    """End up to `n` random active relations over the last 90 days (set-based), if too few ended."""
    from django.db import connection

    from customers.models import FollowRelation

    table = connection.ops.quote_name(FollowRelation._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {table} WHERE status IN ('lost', 'deleted')")
        have = cursor.fetchone()[0]
        if have >= n:
            return
        cursor.execute(
            f"UPDATE {table} SET status = CASE WHEN random() < 0.7 THEN 'lost' ELSE 'deleted' END, "
            f"ended_at = now() - random() * interval '90 days' WHERE id IN ("
            f"  SELECT id FROM {table} WHERE status = 'active' ORDER BY random() LIMIT %s)",
            [n - have],
        )
        cursor.execute(f"ANALYZE {table}")
    print(f"ended {n - have} follow relations over the last 90 days", flush=True)


# ---------------------------------------------------------------- the naive way


def naive(panel_key: str, q, data):
    """The same figures without the aggregates: exact queries on the base tables, or one list
    count per point."""
    from django.db.models import Count, Exists, OuterRef
    from django.db.models.functions import TruncDate
    from django.utils import timezone

    from customers.models import Message, Note, TagEvent, Tagging
    from customers.selectors import customers_count, parse_customer_filter, visible_customers
    from insights.selectors import UNUSED_DAYS
    from tags.selectors import visible_tags

    viewer = q.viewer
    customers = visible_customers(viewer)
    if q.department is not None:
        customers = customers.filter(follow_relations__employee__departments=q.department)
    visible_ids = customers.values("pk")
    tags = list(visible_tags(viewer).values_list("pk", flat=True))
    start = timezone.make_aware(dt.datetime.combine(q.date_from, dt.time.min))
    end = timezone.make_aware(dt.datetime.combine(q.date_to + dt.timedelta(days=1), dt.time.min))
    if panel_key == "tag_coverage":
        total = customers.count()
        per_group = list(Tagging.objects.filter(customer_id__in=visible_ids, tag_id__in=tags)
                         .values("tag__group").annotate(n=Count("customer_id", distinct=True)))
        return total, per_group
    if panel_key == "untagged":
        return customers.count(), customers.filter(~Exists(Tagging.objects.filter(customer_id=OuterRef("pk")))).count()
    if panel_key == "top_tags":
        return list(Tagging.objects.filter(customer_id__in=visible_ids, tag_id__in=tags).values("tag_id")
                    .annotate(n=Count("pk")).order_by("-n")[:20])
    if panel_key == "unused_tags":
        since = timezone.now() - timezone.timedelta(days=UNUSED_DAYS)
        used = set(TagEvent.objects.filter(customer_id__in=visible_ids, action="add", created_at__gte=since,
                                           tag_id__in=tags).values_list("tag_id", flat=True).distinct())
        unused = [t for t in tags if t not in used]
        return list(Tagging.objects.filter(customer_id__in=visible_ids, tag_id__in=unused).values("tag_id")
                    .annotate(n=Count("pk")))
    if panel_key == "tagging_activity":
        return list(TagEvent.objects.filter(customer_id__in=visible_ids, tag_id__in=tags, created_at__gte=start,
                                            created_at__lt=end).annotate(day=TruncDate("created_at"))
                    .values("day", "source").annotate(n=Count("pk")))
    if panel_key == "followups":
        notes = list(Note.objects.filter(customer_id__in=visible_ids, created_at__gte=start, created_at__lt=end)
                     .annotate(day=TruncDate("created_at")).values("day").annotate(n=Count("pk")))
        messages = list(Message.objects.filter(customer_id__in=visible_ids, sent_at__gte=start, sent_at__lt=end)
                        .annotate(day=TruncDate("sent_at")).values("day").annotate(n=Count("pk")))
        return notes, messages
    # live panels: one customer-list count per point
    counts = []
    for series in data.series:
        for link in series.links or []:
            flt = parse_customer_filter(dict(parse_qsl(urlsplit(link).query)))
            counts.append(customers_count(employee=viewer, flt=flt))
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", default="tp_perf_insights")
    parser.add_argument("--copy", action="store_true")
    parser.add_argument("--template", default="tp_perf")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--naive-runs", type=int, default=1)
    parser.add_argument("--viewers", default="admin,manager_bj")
    parser.add_argument("--skip-refresh", action="store_true")
    parser.add_argument("--ended", type=int, default=20_000)
    args = parser.parse_args()

    if args.copy:
        copy_database(args.db, args.template)
    setup_django(args.db)
    from django.core.management import call_command

    if args.copy:
        call_command("migrate", verbosity=0)
    from customers.models import Customer
    from insights.registry import panels_for
    from insights.selectors import latest_snapshot, parse_panel_query
    from insights.services import aggregates_refresh
    from org.models import Employee

    end_relations(args.ended)
    print(f"{Customer.objects.count():,} customers; {load()}", flush=True)
    if not args.skip_refresh or latest_snapshot() is None:
        started = time.monotonic()
        snapshot = aggregates_refresh()
        print(f"refresh_aggregates: {time.monotonic() - started:.1f} s ({snapshot.cohorts:,} cohorts); {load()}",
              flush=True)

    rows = []
    for userid in args.viewers.split(","):
        viewer = Employee.objects.get(userid=userid)
        q = parse_panel_query({}, viewer=viewer)
        print(f"\n{userid} ({', '.join(sorted(viewer.roles))}), {q.date_from} – {q.date_to}; {load()}", flush=True)
        print(f"  {'panel':<26}{'ms':>9}{'naive ms':>11}{'ratio':>8}  points", flush=True)
        for panel in panels_for(viewer):
            ms, data = timed(lambda panel=panel, q=q: panel.selector(q), args.runs)
            naive_ms, _ = timed(lambda panel=panel, q=q, data=data: naive(panel.key, q, data), args.naive_runs)
            points = sum(len(s.data) for s in data.series)
            flag = "" if ms <= TARGET_MS else "  OVER TARGET"
            print(f"  {panel.key:<26}{ms:>9.1f}{naive_ms:>11.0f}{naive_ms / ms:>7.0f}×  {points}{flag}", flush=True)
            rows.append((userid, panel.key, ms, naive_ms))
    worst = max(rows, key=lambda r: r[2])
    print(f"\nslowest panel: {worst[1]} for {worst[0]}, {worst[2]:.1f} ms (target {TARGET_MS} ms); {load()}")


if __name__ == "__main__":
    main()
