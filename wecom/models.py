"""Models of the wecom app: the log of events WeCom sent to the callback (企业微信回调事件)."""

from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy


class EventStatus(models.TextChoices):
    PENDING = "pending", _("待处理")
    DONE = "done", _("已处理")
    FAILED = "failed", _("失败")
    IGNORED = "ignored", _("无需处理")


class WeComEvent(models.Model):
    """One event WeCom delivered to `/wecom/callback/`, stored before it is processed.

    `dedupe_key` is the sha256 of the whole decrypted XML: WeCom's retry of a delivery carries the
    same content and is stored once, while distinct events (客户标签 events have no MsgId and can
    share a CreateTime) always differ somewhere in their content and are all kept.

    Events are processed in `id` order per `order_key` (the customer's ExternalUserID, else the
    event kind), each once. A failed event keeps its error, attempts and next retry time, and
    holds back the later events of its key until it succeeds or is given up (`next_attempt_at`
    empty), so a customer's events are never applied out of order.
    """

    dedupe_key = models.CharField(_("去重键"), max_length=64, unique=True)
    event = models.CharField(_("事件"), max_length=64, db_index=True)
    change_type = models.CharField(_("变更类型"), max_length=64, blank=True, default="")
    external_userid = models.CharField(_("external_userid"), max_length=64, blank=True, default="")
    userid = models.CharField(_("成员 userid"), max_length=64, blank=True, default="")
    order_key = models.CharField(_("顺序键"), max_length=80)
    create_time = models.DateTimeField(_("事件时间"), null=True, blank=True)
    payload = models.JSONField(_("内容"), default=dict)
    raw = models.TextField(_("原始 XML"))
    received_at = models.DateTimeField(_("接收时间"), default=timezone.now, db_index=True)
    status = models.CharField(
        _("状态"), max_length=16, choices=EventStatus.choices, default=EventStatus.PENDING, db_index=True
    )
    attempts = models.PositiveIntegerField(_("尝试次数"), default=0)
    error = models.TextField(_("错误"), blank=True, default="")
    next_attempt_at = models.DateTimeField(_("下次重试"), null=True, blank=True)
    processed_at = models.DateTimeField(_("处理时间"), null=True, blank=True)

    class Meta:
        verbose_name = pgettext_lazy("模型", "企业微信事件")
        verbose_name_plural = pgettext_lazy("模型复数", "企业微信事件")
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["order_key", "id"], name="wecom_event_order"),
            models.Index(
                fields=["id"], name="wecom_event_open", condition=models.Q(status__in=["pending", "failed"])
            ),
            # "Is an earlier event of this customer still open?" reads only the open events: a key
            # with a long history (tag events, a busy customer) costs nothing.
            models.Index(
                fields=["order_key", "id"], name="wecom_event_open_key",
                condition=models.Q(status__in=["pending", "failed"]),
            ),
        ]

    def __str__(self) -> str:
        kind = f"{self.event}/{self.change_type}" if self.change_type else self.event
        return f"{kind} {self.external_userid or self.userid or ''}".strip()

    @property
    def given_up(self) -> bool:
        return self.status == EventStatus.FAILED and self.next_attempt_at is None


from .sync_models import (  # noqa: E402,F401 - the outbound sync's models (sync_models.py)
    OutboxCursor,
    OutboxItem,
    TaxonomyPush,
    WeComTransferItem,
)
