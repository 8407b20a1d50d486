"""Writes of the insights app: the refresh of the daily aggregates (see `insights.models`).

`aggregates_refresh` rebuilds every aggregate table from the customers app's tables in one
transaction, set-based (a handful of INSERT … SELECT statements, no row loops), on PostgreSQL and
on SQLite alike. Celery beat runs it as `insights.refresh_aggregates`; `seed_demo` runs it once.
"""

from __future__ import annotations

import datetime as dt
import time

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from customers.models import Customer, FollowRelation, Message, Note, RelationStatus, TagEvent, Tagging
from customers.selectors import local_settings
from tagportal.locks import tree_lock
from tags.models import Tag

from .models import (
    Cohort,
    CohortGroupCount,
    CohortMember,
    CohortTagCount,
    DailyFollowup,
    DailyRelation,
    DailyTagActivity,
    Snapshot,
)

# Days of activity the daily tables keep: the date-range picker reaches back this far (a year and a
# month, so "this month last year" and "unused in 90 days" are always covered).
HORIZON_DAYS = 400
SNAPSHOTS_KEPT = 50


def _t(model) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def _local_day(column: str) -> str:
    """SQL for the local calendar day (settings.TIME_ZONE) of a timestamp column."""
    if connection.vendor == "postgresql":
        return f"({column} AT TIME ZONE %s)::date"
    # SQLite stores UTC text; Django registers this function on every SQLite connection.
    return f"django_datetime_cast_date({column}, %s, 'UTC')"


def _create_customer_cohorts(cursor) -> None:
    """Temp table insights_cc(customer_id, cohort_id, tagged) and the cohort rows."""
    active = RelationStatus.ACTIVE
    if connection.vendor == "postgresql":
        keys = (
            f"SELECT customer_id, string_agg(employee_id::text, ',' ORDER BY employee_id) AS key "
            f"FROM {_t(FollowRelation)} WHERE status = %s GROUP BY customer_id"
        )
    else:  # SQLite 3.40 has no ORDER BY inside group_concat: aggregate an ordered sub-query
        keys = (
            f"SELECT customer_id, group_concat(employee_id, ',') AS key FROM (SELECT customer_id, employee_id "
            f"FROM {_t(FollowRelation)} WHERE status = %s ORDER BY customer_id, employee_id) GROUP BY customer_id"
        )
    cursor.execute("DROP TABLE IF EXISTS insights_ck")
    cursor.execute("DROP TABLE IF EXISTS insights_cc")
    cursor.execute(
        f"CREATE TEMP TABLE insights_ck AS SELECT c.id AS customer_id, COALESCE(k.key, '') AS key, "
        f"CASE WHEN EXISTS (SELECT 1 FROM {_t(Tagging)} t WHERE t.customer_id = c.id) THEN 1 ELSE 0 END AS tagged "
        f"FROM {_t(Customer)} c LEFT JOIN ({keys}) k ON k.customer_id = c.id",
        [active],
    )
    cursor.execute(
        f"INSERT INTO {_t(Cohort)} (id, key, customers, untagged) "
        "SELECT ROW_NUMBER() OVER (ORDER BY key), key, COUNT(*), SUM(1 - tagged) FROM insights_ck GROUP BY key"
    )
    cursor.execute(
        f"CREATE TEMP TABLE insights_cc AS SELECT ck.customer_id, co.id AS cohort_id FROM insights_ck ck "
        f"JOIN {_t(Cohort)} co ON co.key = ck.key"
    )
    cursor.execute("DROP TABLE insights_ck")
    cursor.execute("CREATE UNIQUE INDEX insights_cc_customer ON insights_cc (customer_id)")
    if connection.vendor == "postgresql":
        cursor.execute("ANALYZE insights_cc")


def _fill_members() -> int:
    """Cohort members from the cohorts' keys (a few thousand short strings)."""
    rows = [
        CohortMember(cohort_id=pk, employee_id=int(e))
        for pk, key in Cohort.objects.values_list("pk", "key")
        for e in key.split(",")
        if e
    ]
    CohortMember.objects.bulk_create(rows, batch_size=5000)
    return len(rows)


@transaction.atomic
def aggregates_refresh(*, now: dt.datetime | None = None) -> Snapshot:
    """Rebuild the 数据看板 aggregates; returns the new `Snapshot` (its time is "数据截至")."""
    tz = settings.TIME_ZONE
    tagevents, tagging, tags = _t(TagEvent), _t(Tagging), _t(Tag)
    # One refresh at a time (beat and 立即重新统计 may overlap): the second waits, then replaces the first's rows.
    with tree_lock("insights_aggregates"), local_settings(work_mem="128MB", jit="off"), \
            connection.cursor() as cursor:
        started = time.monotonic()
        now = now or timezone.now()
        since = now - dt.timedelta(days=HORIZON_DAYS)
        for model in (DailyRelation, DailyFollowup, DailyTagActivity, CohortGroupCount, CohortTagCount,
                      CohortMember, Cohort):
            cursor.execute(f"DELETE FROM {_t(model)}")
        _create_customer_cohorts(cursor)
        _fill_members()
        cursor.execute(
            f"INSERT INTO {_t(CohortTagCount)} (cohort_id, tag_id, customers) "
            f"SELECT cc.cohort_id, t.tag_id, COUNT(*) FROM {tagging} t "
            f"JOIN insights_cc cc ON cc.customer_id = t.customer_id GROUP BY cc.cohort_id, t.tag_id"
        )
        cursor.execute(
            f"INSERT INTO {_t(CohortGroupCount)} (cohort_id, group_id, customers) "
            f"SELECT cc.cohort_id, g.group_id, COUNT(*) FROM ("
            f"  SELECT DISTINCT t.customer_id, tg.group_id FROM {tagging} t JOIN {tags} tg ON tg.id = t.tag_id"
            f") g JOIN insights_cc cc ON cc.customer_id = g.customer_id GROUP BY cc.cohort_id, g.group_id"
        )
        day = _local_day("e.created_at")
        cursor.execute(
            f"INSERT INTO {_t(DailyTagActivity)} (day, cohort_id, tag_id, source, action, events) "
            f"SELECT {day}, cc.cohort_id, e.tag_id, e.source, e.action, COUNT(*) FROM {tagevents} e "
            f"JOIN insights_cc cc ON cc.customer_id = e.customer_id "
            f"WHERE e.tag_id IS NOT NULL AND e.created_at >= %s "
            f"GROUP BY 1, cc.cohort_id, e.tag_id, e.source, e.action",
            [tz, since],
        )
        for kind, model, column in (("notes", Note, "created_at"), ("messages", Message, "sent_at")):
            day = _local_day(f"x.{column}")
            cursor.execute(
                f"INSERT INTO {_t(DailyFollowup)} (day, cohort_id, kind, events) "
                f"SELECT {day}, cc.cohort_id, %s, COUNT(*) FROM {_t(model)} x "
                f"JOIN insights_cc cc ON cc.customer_id = x.customer_id WHERE x.{column} >= %s "
                f"GROUP BY 1, cc.cohort_id",
                [tz, kind, since],
            )
        relations = _t(FollowRelation)
        for kind, column, condition in (
            ("new", "added_at", "r.status = %s"),
            ("lost", "ended_at", "r.status IN (%s, %s) AND r.ended_at IS NOT NULL"),
        ):
            statuses = [RelationStatus.ACTIVE] if kind == "new" else [RelationStatus.LOST, RelationStatus.DELETED]
            day = _local_day(f"r.{column}")
            cursor.execute(
                f"INSERT INTO {_t(DailyRelation)} (day, kind, cohort_id, employee_id, customer_id) "
                f"SELECT {day}, %s, cc.cohort_id, r.employee_id, r.customer_id FROM {relations} r "
                f"JOIN insights_cc cc ON cc.customer_id = r.customer_id WHERE {condition} AND r.{column} >= %s",
                [tz, kind, *statuses, since],
            )
        cursor.execute("SELECT COUNT(*) FROM insights_cc")
        customers = cursor.fetchone()[0]
        cursor.execute("DROP TABLE insights_cc")
        if connection.vendor == "postgresql":  # fresh tables: give the planner their sizes (the panels' plans)
            for model in (Cohort, CohortMember, CohortTagCount, CohortGroupCount, DailyTagActivity, DailyFollowup,
                          DailyRelation):
                cursor.execute(f"ANALYZE {_t(model)}")
    snapshot = Snapshot.objects.create(
        refreshed_at=now, seconds=round(time.monotonic() - started, 3), customers=customers,
        cohorts=Cohort.objects.count(),
    )
    old = Snapshot.objects.order_by("-refreshed_at", "-pk").values_list("pk", flat=True)[SNAPSHOTS_KEPT:]
    Snapshot.objects.filter(pk__in=list(old)).delete()
    return snapshot
