"""Customers and their portraits: follow relations, taggings, notes, chat history, the tag audit,
and the jobs and transfers that change them in bulk."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from org.models import ApiClient
from tags.models import PersonalTag, Tag


class CustomerType(models.IntegerChoices):
    WECHAT = 1, _("微信用户")
    WECOM = 2, _("企业微信用户")


class Gender(models.IntegerChoices):
    UNKNOWN = 0, _("未知")
    MALE = 1, _("男")
    FEMALE = 2, _("女")


class Customer(models.Model):
    """客户 (外部联系人): keyed by WeCom's `external_userid`. Enterprise tags belong to it."""

    external_userid = models.CharField(_("external_userid"), max_length=64, unique=True)
    name = models.CharField(_("名称"), max_length=128)
    corp_name = models.CharField(_("企业名称"), max_length=128, blank=True, default="")
    type = models.PositiveSmallIntegerField(_("类型"), choices=CustomerType.choices, default=CustomerType.WECHAT)
    gender = models.PositiveSmallIntegerField(_("性别"), choices=Gender.choices, default=Gender.UNKNOWN)
    avatar = models.URLField(_("头像"), max_length=500, blank=True, default="")
    crm_fields = models.JSONField(_("CRM 字段"), default=dict, blank=True)
    created_at = models.DateTimeField(_("创建时间"), default=timezone.now)
    updated_at = models.DateTimeField(_("更新时间"), default=timezone.now, db_index=True)

    tags = models.ManyToManyField(Tag, through="Tagging", related_name="customers", verbose_name=_("企业标签"))

    class Meta:
        verbose_name = pgettext_lazy("模型", "客户")
        verbose_name_plural = pgettext_lazy("模型复数", "客户")
        ordering = ["-id"]

    def __str__(self) -> str:
        return self.name or self.external_userid


class RelationStatus(models.TextChoices):
    ACTIVE = "active", _("跟进中")
    TRANSFERRED = "transferred", _("已转接")
    DELETED = "deleted", _("成员已删除客户")  # WeCom del_external_contact: the employee removed the customer
    LOST = "lost", _("客户已删除成员")  # WeCom del_follow_user: the customer removed the employee


class FollowRelation(models.Model):
    """跟进关系: one employee following one customer, with that employee's own remark,
    description, add time, add way and channel `state`. Personal taggings hang off the pair.

    A transferred relation is kept (status `transferred`) as the departed employee's archive.
    """

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="follow_relations")
    employee = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="follow_relations", verbose_name=_("成员")
    )
    remark = models.CharField(_("备注"), max_length=128, blank=True, default="")
    description = models.TextField(_("描述"), blank=True, default="")
    added_at = models.DateTimeField(_("添加时间"), default=timezone.now)
    add_way = models.IntegerField(_("添加方式"), default=0)
    state = models.CharField(_("渠道 state"), max_length=30, blank=True, default="", db_index=True)
    status = models.CharField(
        _("状态"), max_length=16, choices=RelationStatus.choices, default=RelationStatus.ACTIVE, db_index=True
    )
    transferred_to = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    transferred_at = models.DateTimeField(null=True, blank=True)
    # When the relation ended (status deleted or lost); a relation that comes back is active again.
    ended_at = models.DateTimeField(_("结束时间"), null=True, blank=True)
    # On a transferred relation: whether its portrait (remark, personal tags, notes, chat) went to the
    # inheritor. False keeps them archived with this employee until a re-run with the portrait kept.
    portrait_kept = models.BooleanField(_("已移交画像"), null=True, blank=True)

    class Meta:
        verbose_name = pgettext_lazy("模型", "跟进关系")
        verbose_name_plural = pgettext_lazy("模型复数", "跟进关系")
        constraints = [
            models.UniqueConstraint("customer", "employee", name="follow_relation_unique_pair"),
        ]
        indexes = [
            models.Index(fields=["employee", "customer"], name="follow_employee_customer"),
            # Visibility ("customers my staff follow") reads only active relations: index-only.
            models.Index(
                fields=["employee", "customer"], name="follow_active_emp_cust", condition=models.Q(status="active")
            ),
            # 数据看板 and the list's date filters: relations added / ended in a date range.
            models.Index(fields=["added_at"], name="follow_added_at"),
            models.Index(fields=["ended_at"], name="follow_ended_at", condition=models.Q(ended_at__isnull=False)),
        ]

    def __str__(self) -> str:
        return f"{self.employee_id}→{self.customer_id}"


class Tagging(models.Model):
    """An enterprise tag on a customer. Unique per (tag, customer); the tag-first index serves filters.

    Its references are enforced by the database per statement, not per row (migration
    `0012_tagging_refs_per_statement`): on PostgreSQL a statement trigger checks and share-locks the
    customers and tags of all rows an INSERT/UPDATE wrote (one set-based query instead of two
    foreign-key lookups per row, 0.6–0.9 s of a 100,000-tagging call), and deleting a customer or a
    tag that taggings still point at fails, as a foreign key would; on SQLite a row trigger checks
    inserts and updates. `on_delete` (Django's collector) deletes the taggings first, as before.
    The single-column indexes are prefixes of the two composite ones, so there are none.
    """

    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="taggings", db_constraint=False, db_index=False
    )
    tag = models.ForeignKey(Tag, on_delete=models.CASCADE, related_name="taggings", db_constraint=False, db_index=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint("tag", "customer", name="tagging_unique_tag_customer")]
        indexes = [models.Index(fields=["customer", "tag"], name="tagging_customer_tag")]


class PersonalTagging(models.Model):
    """A personal tag on a customer; the tag's owner must follow the customer."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="personal_taggings")
    personal_tag = models.ForeignKey(PersonalTag, on_delete=models.CASCADE, related_name="taggings")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint("personal_tag", "customer", name="personal_tagging_unique"),
        ]
        indexes = [models.Index(fields=["customer", "personal_tag"], name="ptagging_customer_tag")]


class Note(models.Model):
    """跟进记录: a note on a customer, attributed to its author."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="notes")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="notes")
    text = models.TextField(_("内容"))
    created_at = models.DateTimeField(_("时间"), default=timezone.now)

    class Meta:
        verbose_name = pgettext_lazy("模型", "跟进记录")
        verbose_name_plural = pgettext_lazy("模型复数", "跟进记录")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["customer", "-created_at"], name="note_customer_time")]


class Direction(models.TextChoices):
    IN = "in", _("客户发出")
    OUT = "out", _("成员发出")


class Message(models.Model):
    """聊天记录: one message between an employee and a customer (from WeCom's archive)."""

    msgid = models.CharField(max_length=128, unique=True)
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="messages")
    employee = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="messages")
    direction = models.CharField(max_length=3, choices=Direction.choices)
    content = models.TextField()
    sent_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = pgettext_lazy("模型", "聊天记录")
        verbose_name_plural = pgettext_lazy("模型复数", "聊天记录")
        ordering = ["-sent_at", "-id"]
        indexes = [models.Index(fields=["customer", "-sent_at"], name="message_customer_time")]


class TagSource(models.TextChoices):
    MANUAL = "manual", _("手动")
    BULK = "bulk", _("批量")
    API = "api", _("API")
    CHANNEL = "channel", _("渠道活码")
    RULE = "rule", _("智能标签")
    TRANSFER = "transfer", _("继承")
    IMPORT = "import", _("导入")
    WECOM = "wecom", _("企业微信")  # changes that came from WeCom: never echoed back to it


class TagAction(models.TextChoices):
    ADD = "add", _("添加")
    REMOVE = "remove", _("移除")


class JobKind(models.TextChoices):
    BULK_TAGGING = "bulk_tagging", _("批量打标签")
    UNDO = "undo", _("撤销")
    TRANSFER = "transfer", _("客户继承")
    # Kinds of the apps above; their handlers register with `customers.jobs.job_handler` on import.
    WECOM_SYNC = "wecom_sync", _("企业微信同步")
    RULE_BACKTEST = "rule_backtest", _("智能标签回测")
    RULE_UNDO = "rule_undo", _("撤销智能标签")


class JobStatus(models.TextChoices):
    PENDING = "pending", _("排队中")
    RUNNING = "running", _("运行中")
    SUCCEEDED = "succeeded", _("已完成")
    FAILED = "failed", _("失败")
    CANCELLED = "cancelled", _("已取消")


class Job(models.Model):
    """后台任务: a long operation run by Celery in chunks, with progress, errors and its actor."""

    kind = models.CharField(_("类型"), max_length=32, choices=JobKind.choices)
    status = models.CharField(
        _("状态"), max_length=16, choices=JobStatus.choices, default=JobStatus.PENDING, db_index=True
    )
    params = models.JSONField(_("参数"), default=dict, blank=True)
    total = models.IntegerField(_("总数"), default=0)
    done = models.IntegerField(_("已完成"), default=0)
    failed_items = models.IntegerField(_("失败数"), default=0)
    errors = models.JSONField(_("错误"), default=list, blank=True)
    counts = models.JSONField(_("统计"), default=dict, blank=True)
    log = models.JSONField(_("日志"), default=list, blank=True)
    actor_employee = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="jobs"
    )
    actor_client = models.ForeignKey(ApiClient, on_delete=models.PROTECT, null=True, blank=True, related_name="jobs")
    undo_of = models.ForeignKey("self", on_delete=models.PROTECT, null=True, blank=True, related_name="undone_by")
    cancel_requested = models.BooleanField(default=False)
    created_at = models.DateTimeField(_("创建时间"), default=timezone.now, db_index=True)
    started_at = models.DateTimeField(_("开始时间"), null=True, blank=True)
    finished_at = models.DateTimeField(_("结束时间"), null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    # Where the handler resumes (e.g. the last customer id done); committed with each chunk's work.
    cursor = models.JSONField(null=True, blank=True)
    # The run that owns the job while running ("node|boot|token"); a chunk commits only if it still matches.
    worker = models.CharField(max_length=200, blank=True, default="")

    class Meta:
        verbose_name = pgettext_lazy("模型", "任务")
        verbose_name_plural = pgettext_lazy("模型复数", "任务")
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"#{self.pk} {self.get_kind_display()}"


class TagEvent(models.Model):
    """标签变更记录 (audit): one tag added to or removed from one customer, by whom, how, when.

    Undo of a job or a rule reads these rows: it reverses exactly what they record.

    Audit rows are history, written by the hundred thousand in one bulk call: their foreign keys
    have no database constraint (`db_constraint=False`), so a commit does not re-check every row
    against five tables (tag names are copied into `tag_name` anyway). `on_delete` still holds,
    Django's collector applies it: deleting a customer deletes its events, deleting a tag, a
    personal tag or a job sets theirs to NULL, and an employee or API client with events is
    protected. Indexes: only those that reads and those deletes need (`customer` and `job` are
    the leading columns of the composite ones; actor and personal-tag ids are indexed where set).
    """

    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="tag_events", db_constraint=False, db_index=False
    )
    tag = models.ForeignKey(
        Tag, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", db_constraint=False
    )
    personal_tag = models.ForeignKey(
        PersonalTag, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", db_constraint=False,
        db_index=False,
    )
    tag_name = models.CharField(_("标签"), max_length=64)
    action = models.CharField(_("操作"), max_length=8, choices=TagAction.choices)
    source = models.CharField(_("来源"), max_length=16, choices=TagSource.choices)
    actor_employee = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+",
        db_constraint=False, db_index=False,
    )
    actor_client = models.ForeignKey(
        ApiClient, on_delete=models.PROTECT, null=True, blank=True, related_name="+", db_constraint=False,
        db_index=False,
    )
    actor_label = models.CharField(_("执行者"), max_length=100, blank=True, default="")
    job = models.ForeignKey(
        Job, on_delete=models.SET_NULL, null=True, blank=True, related_name="tag_events", db_constraint=False,
        db_index=False,
    )
    created_at = models.DateTimeField(_("时间"), default=timezone.now)

    class Meta:
        verbose_name = pgettext_lazy("模型", "标签变更记录")
        verbose_name_plural = pgettext_lazy("模型复数", "标签变更记录")
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["customer", "-created_at"], name="tagevent_customer_time"),
            # Undo walks a job's events customer by customer (keyset on customer_id); only job rows.
            models.Index(fields=["job", "customer"], name="tagevent_job_customer_set",
                         condition=models.Q(job__isnull=False)),
            # For deletes (SET_NULL / PROTECT lookups); most rows have NULL there.
            models.Index(fields=["personal_tag"], name="tagevent_personal_tag",
                         condition=models.Q(personal_tag__isnull=False)),
            models.Index(fields=["actor_employee"], name="tagevent_actor_employee",
                         condition=models.Q(actor_employee__isnull=False)),
            models.Index(fields=["actor_client"], name="tagevent_actor_client",
                         condition=models.Q(actor_client__isnull=False)),
        ]


class Transfer(models.Model):
    """客户继承: a hand-over of an employee's customers (离职继承 or 在职继承), run as a job."""

    job = models.OneToOneField(Job, on_delete=models.PROTECT, null=True, blank=True, related_name="transfer")
    from_employee = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="transfers_out", verbose_name=_("原跟进成员")
    )
    to_employees = models.ManyToManyField(
        settings.AUTH_USER_MODEL, related_name="transfers_in", verbose_name=_("继承人")
    )
    keep_portrait = models.BooleanField(_("保留完整画像"), default=True)
    mark_departed = models.BooleanField(_("标记离职"), default=True)
    customer_ids = models.JSONField(null=True, blank=True)
    created_by_employee = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_by_client = models.ForeignKey(ApiClient, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(_("创建时间"), default=timezone.now)
    finished_at = models.DateTimeField(_("完成时间"), null=True, blank=True)

    class Meta:
        verbose_name = pgettext_lazy("模型", "客户继承")
        verbose_name_plural = pgettext_lazy("模型复数", "客户继承")
        ordering = ["-created_at", "-id"]
        constraints = [
            # At most one unfinished transfer per departing employee: a second start is a 409.
            models.UniqueConstraint(
                "from_employee", condition=models.Q(finished_at__isnull=True), name="transfer_one_running_per_employee"
            ),
        ]


class TransferOutcome(models.TextChoices):
    PENDING = "pending", _("待处理")
    MOVED = "moved", _("已转接")
    MERGED = "merged", _("已合并")
    UNCHANGED = "unchanged", _("无变化")
    FAILED = "failed", _("失败")


class TransferItem(models.Model):
    """One customer of a transfer, its inheritor and what happened to it."""

    transfer = models.ForeignKey(Transfer, on_delete=models.CASCADE, related_name="items")
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="+")
    to_employee = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    outcome = models.CharField(max_length=16, choices=TransferOutcome.choices, default=TransferOutcome.PENDING)
    detail = models.JSONField(default=dict, blank=True)
    done_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint("transfer", "customer", name="transfer_item_unique_customer")]
