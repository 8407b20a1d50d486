#!/usr/bin/env python
"""Benchmark: the customer list on PostgreSQL with 1,000,000 customers and ~10,000,000 taggings.

    .venv/bin/python bench/customer_list.py [--db tp_bench_list] [--copy] [--template tp_bench] [--runs 15]

`--copy` (re)creates `--db` from the template database (the 1M-customer `tp_bench` that
`seed_demo --customers 1000000` built; see bench/README.md) with `createdb -T`, so this
benchmark never holds a connection on the template others copy from. The database is only read
(plus one API client row). Filter: tags_all = VIP客户,高意向 and tags_none = 已成交, for a sales
manager (`manager_bj`, two managed departments) and for the enterprise admin.

Measured (median of `--runs` after two warm-ups, milliseconds):
  (a) first page (50 rows) through `customers_filtered` + `with_card_data` + `CustomerSerializer`;
  (b) the same through the API, `GET /api/v1/customers/?tags_all=..&tags_none=..` with Django's test
      Client (the whole middleware, auth and DRF stack; an API key with `employee=` for the manager,
      a session for the admin);
  (c) the "all N matching" count (`customers_count`, anchored on the rarest has-all-of tag; the
      plain `customers_filtered(...).count()` is printed beside it);
  (d) the admin changelist `/customers/customer/?tags_all=..&tags_none=..` logged in, when the
      CustomerAdmin is registered.
Then the same work done the naive way, with the ratio: JOIN + DISTINCT over the taggings and the
follow relations plus one query per row for the tags and followers (list), and Python-side set
arithmetic over every tagging id list (count). Targets: list 100 ms, count 1 s; over target the
query plan (EXPLAIN ANALYZE) is printed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

from _common import copy_database, setup_django

ROOT = Path(__file__).resolve().parent.parent
LIST_TARGET_MS = 100
COUNT_TARGET_MS = 1000
PAGE = 50


BEST: dict[str, float] = {}


def median_ms(fn, runs: int) -> tuple[float, object]:
    """Median wall time of `runs` calls after two warm-ups; the best run is kept in BEST[fn name]."""
    result = None
    for _ in range(2):
        result = fn()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - started) * 1000)
    BEST[fn.__name__] = min(times)
    return statistics.median(times), result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", default="tp_bench_list")
    parser.add_argument("--template", default="tp_bench")
    parser.add_argument("--copy", action="store_true", help="(re)create --db from --template first")
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--naive-runs", type=int, default=3)
    parser.add_argument("--manager", default="manager_bj")
    parser.add_argument("--admin", default="admin")
    args = parser.parse_args()
    if args.copy:
        copy_database(args.db, args.template)
    setup_django(args.db)

    from django.conf import settings
    from django.contrib import admin
    from django.db import connection, reset_queries
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from customers.api.serializers import CustomerSerializer
    from customers.models import Customer, FollowRelation, Tagging
    from customers.selectors import (
        customers_count,
        customers_count_queryset,
        customers_filtered,
        parse_customer_filter,
        visible_customers,
        with_card_data,
    )
    from org.models import ApiClient, Employee
    from tags.models import Tag
    from tags.selectors import visible_tags

    settings.ALLOWED_HOSTS = ["*"]
    tag = {name: Tag.objects.get(name=name).pk for name in ("VIP客户", "高意向", "已成交")}
    params = {"tags_all": f"{tag['VIP客户']},{tag['高意向']}", "tags_none": str(tag["已成交"])}
    n_customers = Customer.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    n_taggings = connection.cursor().execute(
        "SELECT reltuples::bigint FROM pg_class WHERE relname = %s", [Tagging._meta.db_table]
    ).fetchone()[0]
    print(f"database {args.db}: ~{n_customers:,} customers, ~{n_taggings:,} taggings (planner estimate)")
    print(f"filter: {params}  (VIP客户, 高意向 all of; 已成交 none of)\n")

    client_row = ApiClient.objects.filter(name="bench").first()
    if client_row is None:
        client_row = ApiClient(name="bench")
    key = client_row.set_new_key()
    client_row.save()
    has_admin = admin.site.is_registered(Customer)
    figures = []

    for label, userid in (("manager", args.manager), ("admin", args.admin)):
        employee = Employee.objects.get(userid=userid)
        flt = parse_customer_filter(params)

        def page(employee=employee, flt=flt):
            # A fresh employee each time: roles and visible tags are computed per request, as in a view.
            emp = Employee.objects.get(pk=employee.pk)
            qs = with_card_data(customers_filtered(employee=emp, flt=flt), employee=emp)
            return CustomerSerializer(list(qs[:PAGE]), many=True).data

        def count(employee=employee, flt=flt):
            return customers_count(employee=Employee.objects.get(pk=employee.pk), flt=flt)

        def plain_count(employee=employee, flt=flt):
            return customers_filtered(employee=Employee.objects.get(pk=employee.pk), flt=flt).count()

        http = Client()
        if label == "manager":
            url_params = {**params, "employee": userid, "page_size": PAGE}
            headers = {"HTTP_AUTHORIZATION": f"Bearer {key}"}
        else:
            http.force_login(employee)
            url_params, headers = {**params, "page_size": PAGE}, {}

        def api(http=http, url_params=url_params, headers=headers):
            response = http.get("/api/v1/customers/", url_params, **headers)
            assert response.status_code == 200, response.content[:300]
            return response.json()["results"]

        admin_http = Client()
        admin_http.force_login(employee)

        def changelist(admin_http=admin_http):
            response = admin_http.get("/customers/customer/", params)
            assert response.status_code == 200, response.status_code
            return response

        t_page, rows = median_ms(page, args.runs)
        t_api, api_rows = median_ms(api, args.runs)
        t_count, n = median_ms(count, max(3, args.runs // 3))
        t_plain_count, n_plain = median_ms(plain_count, 3)
        assert n == n_plain, (n, n_plain)
        assert [r["id"] for r in rows] == [r["id"] for r in api_rows]
        with CaptureQueriesContext(connection) as ctx:
            api()
        line = (f"{label:8s} ({userid}): matching {n:,}; (a) selector+serializer {t_page:7.1f} ms; "
                f"(b) API {t_api:7.1f} ms ({len(ctx.captured_queries)} queries); (c) count {t_count:7.1f} ms")
        t_admin = None
        if has_admin:
            t_admin, _ = median_ms(changelist, max(5, args.runs // 2))
            line += f"; (d) admin changelist {t_admin:7.1f} ms"
        print(line, flush=True)
        print(f"{'':8s} best runs: (a) {BEST['page']:.1f} ms, (b) {BEST['api']:.1f} ms, (c) {BEST['count']:.1f} ms"
              + (f", (d) {BEST['changelist']:.1f} ms" if has_admin else ""))
        print(f"{'':8s} count anchored on customers instead (customers_filtered().count()): {t_plain_count:7.1f} ms")
        figures.append((label, t_page, t_api, t_count, t_admin))

        # ---- the naive way
        emp = Employee.objects.get(pk=employee.pk)
        visible_tag_ids = set(visible_tags(emp).values_list("pk", flat=True))

        def naive_page(emp=emp, visible_tag_ids=visible_tag_ids, label=label):
            qs = Customer.objects.filter(taggings__tag_id=tag["VIP客户"]).filter(taggings__tag_id=tag["高意向"])
            qs = qs.exclude(taggings__tag_id=tag["已成交"])
            if label == "manager":
                reach = Employee.objects.filter(departments__in=emp.managed_departments.all()).values("pk")
                qs = qs.filter(follow_relations__employee__in=reach, follow_relations__status="active")
            out = []
            for c in qs.distinct().order_by("-id")[:PAGE]:
                tags = [t.tag_id for t in Tagging.objects.filter(customer=c) if t.tag_id in visible_tag_ids]
                followers = [(r.employee.userid, r.remark) for r in FollowRelation.objects.filter(customer=c)]
                out.append((c.pk, tags, followers))
            return out

        def naive_count(emp=emp, label=label):
            def ids(tag_id):
                return set(Tagging.objects.filter(tag_id=tag_id).values_list("customer_id", flat=True))

            matching = (ids(tag["VIP客户"]) & ids(tag["高意向"])) - ids(tag["已成交"])
            if label == "manager":
                matching &= set(visible_customers(emp).values_list("pk", flat=True))
            return len(matching)

        t_naive_page, naive_rows = median_ms(naive_page, args.naive_runs)
        t_naive_count, naive_n = median_ms(naive_count, args.naive_runs)
        assert naive_n == n, (naive_n, n)
        assert [r[0] for r in naive_rows] == [r["id"] for r in rows]
        print(f"{'':8s} naive: list (JOIN+DISTINCT, a query per row) {t_naive_page:7.1f} ms = "
              f"{t_naive_page / t_page:.1f}× (a); count (Python-side sets) {t_naive_count:7.1f} ms = "
              f"{t_naive_count / t_count:.1f}× (c)", flush=True)

        if t_page > LIST_TARGET_MS or t_api > LIST_TARGET_MS:
            print("  over the list target; plan of the page query:")
            print(customers_filtered(employee=emp, flt=flt)[:PAGE].explain(analyze=True, buffers=True))
        if t_count > COUNT_TARGET_MS:
            print("  over the count target; plan of the count query:")
            print(customers_count_queryset(employee=emp, flt=flt).explain(analyze=True, buffers=True))
        reset_queries()

    print("\nsummary (median ms): role, list selector+serializer, list API, count, admin changelist")
    for label, t_page, t_api, t_count, t_admin in figures:
        admin_txt = f"{t_admin:.1f}" if t_admin is not None else "n/a"
        ok = t_page <= LIST_TARGET_MS and t_api <= LIST_TARGET_MS and t_count <= COUNT_TARGET_MS
        verdict = "OK" if ok else "OVER TARGET"
        print(f"  {label:8s} {t_page:7.1f} {t_api:7.1f} {t_count:8.1f} {admin_txt:>8s}  {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
