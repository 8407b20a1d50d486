"""Models of the outbound sync towards WeCom: the tag outbox's position and per-customer items,
the corp-tag push queue, and transfers handed over in WeCom.

Imported by `wecom.models` (Django finds models there)."""

from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy


class OutboxCursor(models.Model):
    """Where the tag outbox has read the audit (`customers.TagEvent`) up to: one row (pk 1).

    Every event id ≤ `position` has been read, except those in `gaps`: ids the reader skipped
    because their transaction had not committed yet (ids come from a sequence before commit).
    A gap is `[lo, hi, seen_at, xmax]`: re-read on every pass until it is final, i.e. every
    transaction that could still fill it has ended (PostgreSQL: the oldest running transaction is
    newer than `xmax`, the snapshot's next xid recorded one pass after the gap was seen; SQLite,
    where writers are serial, after `GAP_SECONDS`).
    """

    position = models.BigIntegerField(default=0)
    gaps = models.JSONField(default=list, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        # The connection's one state row: the admin menu lists it as 企业微信连接 (the status page).
        verbose_name = pgettext_lazy("模型", "企业微信连接")
        verbose_name_plural = pgettext_lazy("模型复数", "企业微信连接")


class OutboxStatus(models.TextChoices):
    PENDING = "pending", _("待发送")
    SENDING = "sending", _("发送中")
    DONE = "done", _("已同步")
    FAILED = "failed", _("失败")


class OutboxItem(models.Model):
    """One customer's net tag change to send with `externalcontact/mark_tag`.

    `changes` maps tag ids (as text) to `[action, acting employee id or null]`: the last change of
    each tag wins (added then removed = removed). New audit rows for a customer fold into its
    pending item; an item being sent is never changed, the next changes wait in a new item, sent
    after it (order per customer). A `sending` item found again (its worker died) is resumed by
    re-reading the contact from WeCom and sending only what is still missing.
    """

    customer = models.ForeignKey("customers.Customer", on_delete=models.CASCADE, related_name="+")
    changes = models.JSONField(default=dict)
    first_event_id = models.BigIntegerField()
    last_event_id = models.BigIntegerField()
    status = models.CharField(max_length=10, choices=OutboxStatus.choices, default=OutboxStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    claimed_at = models.DateTimeField(null=True, blank=True)
    claimed_by = models.CharField(max_length=200, blank=True, default="")  # "node|boot" of the sender
    last_error = models.TextField(blank=True, default="")
    sent = models.JSONField(default=list, blank=True)  # the mark_tag calls made, for the status page
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = pgettext_lazy("模型", "标签同步")
        verbose_name_plural = pgettext_lazy("模型复数", "标签同步")
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="wecom_outbox_due",
                         condition=models.Q(status__in=["pending", "sending"])),
            models.Index(fields=["customer", "id"], name="wecom_outbox_customer"),
        ]


class TaxonomyPush(models.Model):
    """A taxonomy change to push to WeCom's corp tags (add/edit/del_corp_tag), queued by the tags
    services' taxonomy-changed hook in the same transaction as the change; pushed in id order.

    `object_id` is the group's or tag's id; for deletes `external_ids` keeps the WeCom ids the rows
    had (they are gone when the push runs)."""

    kind = models.CharField(max_length=8)  # group | tag
    action = models.CharField(max_length=10)  # created | updated | moved | deleted
    object_id = models.BigIntegerField()
    external_ids = models.JSONField(default=list, blank=True)
    previous_group_id = models.BigIntegerField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=OutboxStatus.choices, default=OutboxStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    last_error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = pgettext_lazy("模型", "企业标签同步")
        verbose_name_plural = pgettext_lazy("模型复数", "企业标签同步")
        indexes = [models.Index(fields=["status", "id"], name="wecom_taxpush_status")]


class WeComTransferStatus(models.IntegerChoices):
    """transfer_result's status, plus 0 for "sent, not polled yet"."""

    SENT = 0, _("已提交")
    DONE = 1, _("接替完毕")
    WAITING = 2, _("等待接替")
    REFUSED = 3, _("客户拒绝")
    LIMIT = 4, _("接替成员客户达到上限")
    NO_RECORD = 5, _("无接替记录")


FINAL_TRANSFER_STATUSES = (1, 3, 4, 5)


class WeComTransferItem(models.Model):
    """WeCom's side of one customer of a transfer (离职继承 resigned/transfer_customer or 在职继承
    transfer_customer): the call's answer (`errcode`) and the polled `transfer_result` status."""

    transfer = models.ForeignKey("customers.Transfer", on_delete=models.CASCADE, related_name="+")
    item = models.OneToOneField("customers.TransferItem", on_delete=models.CASCADE, related_name="+")
    handover_userid = models.CharField(max_length=64)
    takeover_userid = models.CharField(max_length=64)
    external_userid = models.CharField(max_length=64)
    resigned = models.BooleanField(default=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    errcode = models.IntegerField(null=True, blank=True)
    status = models.PositiveSmallIntegerField(choices=WeComTransferStatus.choices, null=True, blank=True)
    takeover_time = models.DateTimeField(null=True, blank=True)
    checked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = pgettext_lazy("模型", "企业微信继承")
        verbose_name_plural = pgettext_lazy("模型复数", "企业微信继承")
        indexes = [models.Index(fields=["transfer", "sent_at"], name="wecom_transfer_sent")]
