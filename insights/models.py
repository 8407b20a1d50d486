"""The 数据看板's daily aggregates: what is too slow to count exactly at 1M customers, counted by
`insights.services.aggregates_refresh` (Celery beat, task `insights.refresh_aggregates`).

Visibility is kept exact by counting per **cohort**: the set of employees who actively follow a
customer. Every customer is in exactly one cohort (customers with no active follower in the empty
one), and whether a viewer sees a customer depends only on its cohort (rule 5: a staff member sees
the customers they follow, a manager those of their departments' members). So a viewer's figure is
the sum over the cohorts they see, with no customer counted twice; the department filter ("followed
by a member of exactly that department") is a property of the cohort too. Tags are counted per tag
(or per tag group), so a viewer's sums take only the tags they see.

Rows are replaced wholesale by each refresh, in one transaction: readers see either the previous
snapshot or the new one. Ids of tags, groups and employees are plain integers (no foreign-key
constraint): a snapshot is history and a deleted tag simply stops being shown.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class Snapshot(models.Model):
    """One refresh of the aggregates: when it ran (数据截至 HH:MM) and how long it took."""

    refreshed_at = models.DateTimeField(_("数据截至"), db_index=True)
    seconds = models.FloatField(_("耗时（秒）"), default=0)
    customers = models.BigIntegerField(_("客户数"), default=0)
    cohorts = models.IntegerField(_("跟进组合数"), default=0)

    class Meta:
        verbose_name = _("数据看板")
        verbose_name_plural = _("数据看板")
        ordering = ["-refreshed_at"]

    def __str__(self) -> str:
        return f"{self.refreshed_at:%Y-%m-%d %H:%M}"


class Cohort(models.Model):
    """The customers followed (actively) by exactly one set of employees; `key` is their sorted ids."""

    id = models.IntegerField(primary_key=True)
    key = models.TextField(unique=True)
    customers = models.BigIntegerField(default=0)
    untagged = models.BigIntegerField(default=0)  # customers with no enterprise tag at all


class CohortMember(models.Model):
    """One employee of a cohort (what visibility and the department filter select cohorts by)."""

    cohort = models.ForeignKey(Cohort, on_delete=models.CASCADE, related_name="members", db_constraint=False)
    employee_id = models.IntegerField()

    class Meta:
        indexes = [models.Index(fields=["employee_id", "cohort"], name="insights_member_emp")]


class CohortTagCount(models.Model):
    """Customers of a cohort carrying a tag."""

    cohort = models.ForeignKey(Cohort, on_delete=models.CASCADE, related_name="+", db_constraint=False)
    tag_id = models.IntegerField()
    customers = models.BigIntegerField()

    class Meta:
        indexes = [models.Index(fields=["cohort", "tag_id"], name="insights_tagcount")]


class CohortGroupCount(models.Model):
    """Customers of a cohort carrying at least one tag of a group (its own tags, not sub-groups')."""

    cohort = models.ForeignKey(Cohort, on_delete=models.CASCADE, related_name="+", db_constraint=False)
    group_id = models.IntegerField()
    customers = models.BigIntegerField()

    class Meta:
        indexes = [models.Index(fields=["cohort", "group_id"], name="insights_groupcount")]


class DailyTagActivity(models.Model):
    """Enterprise-tag changes (the audit) per local day, cohort, tag, source and action."""

    day = models.DateField()
    cohort = models.ForeignKey(Cohort, on_delete=models.CASCADE, related_name="+", db_constraint=False)
    tag_id = models.IntegerField()
    source = models.CharField(max_length=16)
    action = models.CharField(max_length=8)
    events = models.BigIntegerField()

    class Meta:
        indexes = [
            models.Index(fields=["day", "cohort"], name="insights_tagact_day"),
            models.Index(fields=["tag_id", "day"], name="insights_tagact_tag"),
        ]


class DailyFollowup(models.Model):
    """Follow-up activity per local day and cohort: notes (跟进记录) and chat messages (聊天记录)."""

    KINDS = (("notes", _("跟进记录")), ("messages", _("聊天记录")))

    day = models.DateField()
    cohort = models.ForeignKey(Cohort, on_delete=models.CASCADE, related_name="+", db_constraint=False)
    kind = models.CharField(max_length=16, choices=KINDS)
    events = models.BigIntegerField()

    class Meta:
        indexes = [models.Index(fields=["day", "cohort"], name="insights_followup_day")]


class DailyRelation(models.Model):
    """A follow relation added (`new`: still active) or ended (`lost`: lost / deleted) on a local day,
    with its customer's cohort: the live table's rows of the last `HORIZON_DAYS`, narrowed so that
    "new / lost customers per day, department or employee" count distinct customers exactly (the
    customer list's `added_*` / `lost_*` with `department` or `follower`) without a semi-join on
    visibility per row. One index holds every column the panels read (index-only scans)."""

    day = models.DateField()
    kind = models.CharField(max_length=4)  # "new" | "lost"
    cohort = models.ForeignKey(Cohort, on_delete=models.CASCADE, related_name="+", db_constraint=False)
    employee = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.DO_NOTHING, related_name="+", db_constraint=False
    )
    customer_id = models.BigIntegerField()

    class Meta:
        indexes = [
            # every column as a key (not INCLUDE, which SQLite lacks): index-only scans on PostgreSQL
            models.Index(fields=["kind", "day", "cohort", "employee", "customer_id"], name="insights_relday_all"),
        ]
