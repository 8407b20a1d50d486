"""渠道活码 channel codes and the customers who came through them.

A `ChannelCode` is a QR code with a unique `state` (WeCom's contact-way state, ≤ 30 chars), the
employees who receive the customers (with backups, a daily limit and working hours), and preset
enterprise tags applied to every customer who adds through it. A `ChannelAdd` records each follow
relation that came through a code: it makes the trigger fire once per relation, and feeds the
statistics and the rotation (who has received how many customers today).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from customers.models import Customer, FollowRelation
from org.models import Department
from tagportal.querysets import RestrictedQuerySet
from tags.models import Tag

NAME_MAX_LENGTH = 30
STATE_MAX_LENGTH = 30  # WeCom's limit on a contact way's `state`


class Rotation(models.TextChoices):
    ROUND_ROBIN = "round_robin", _("轮流分配")
    LEAST_LOADED = "least_loaded", _("今日最少优先")


class ChannelCodeQuerySet(RestrictedQuerySet):
    def restrict(self, actor, action: str = "view"):
        """Who sees and manages which codes (`channels.selectors.codes_for`, the one definition)."""
        from .selectors import codes_for

        return codes_for(actor, action, self)


class ChannelCode(models.Model):
    """渠道活码: one QR code per channel (an expo, a store, a live stream, an article). Every customer
    who adds an employee through it (a follow relation with its `state`) gets its tags, once."""

    name = models.CharField(_("名称"), max_length=NAME_MAX_LENGTH)
    state = models.CharField(_("渠道 state"), max_length=STATE_MAX_LENGTH, unique=True)
    employees = models.ManyToManyField(
        settings.AUTH_USER_MODEL, verbose_name=_("接待成员"), related_name="channel_codes"
    )
    backup_employees = models.ManyToManyField(
        settings.AUTH_USER_MODEL, verbose_name=_("备用成员"), blank=True, related_name="backup_channel_codes",
        help_text=_("所有接待成员达到每日上限或不在工作时间时接待。"),
    )
    daily_limit = models.PositiveIntegerField(
        _("每人每日上限"), null=True, blank=True,
        help_text=_("每位成员每天（北京时间）最多接待的新客户数；留空表示不限。"),
    )
    rotation = models.CharField(_("分配方式"), max_length=16, choices=Rotation.choices, default=Rotation.ROUND_ROBIN)
    # {"0": [["09:00", "18:00"]], ...}: Monday = "0"; a weekday missing or empty = no working hours that
    # day (backups receive). An empty mapping = always.
    working_hours = models.JSONField(_("工作时间"), default=dict, blank=True)
    tags = models.ManyToManyField(Tag, verbose_name=_("自动打的标签"), blank=True, related_name="channel_codes")
    remark_template = models.CharField(
        _("备注模板"), max_length=64, blank=True, default="",
        help_text=_("新客户的备注，可用 {channel}（渠道名）、{name}（客户昵称）、{employee}（接待成员）。"),
    )
    description = models.TextField(_("说明"), blank=True, default="")
    welcome_message = models.TextField(_("欢迎语"), blank=True, default="")
    skip_verify = models.BooleanField(_("无需验证"), default=True, help_text=_("客户添加时无需成员确认。"))
    enabled = models.BooleanField(_("启用"), default=True, help_text=_("停用后扫码添加的客户不再自动打标签。"))
    department = models.ForeignKey(
        Department, verbose_name=_("所属部门"), null=True, blank=True, on_delete=models.PROTECT,
        related_name="channel_codes",
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("创建人"), null=True, blank=True, on_delete=models.PROTECT,
        related_name="+",
    )
    # WeCom's contact way (filled by the WeCom connection; blank when the portal runs standalone).
    config_id = models.CharField(_("企业微信 config_id"), max_length=64, blank=True, default="")
    qr_code = models.URLField(_("企业微信二维码"), max_length=500, blank=True, default="")
    # Employee ids receiving right now (as last computed): a change fires the receivers-changed hook.
    receivers = models.JSONField(default=list, blank=True, editable=False)
    created_at = models.DateTimeField(_("创建时间"), default=timezone.now)
    updated_at = models.DateTimeField(_("更新时间"), auto_now=True)

    objects = ChannelCodeQuerySet.as_manager()

    class Meta:
        verbose_name = pgettext_lazy("模型", "渠道活码")
        verbose_name_plural = pgettext_lazy("模型复数", "渠道活码")
        ordering = ["-id"]

    def __str__(self) -> str:
        return self.name


class ChannelAdd(models.Model):
    """One follow relation that came through a code (新增客户): who received the customer and when
    (`day` is the Asia/Shanghai date). A relation that ended and comes back is a new add; the
    earlier one then gets `ended_at`. While a relation is still ended, its last add's end is read
    from the relation itself (status `lost`/`deleted`, `ended_at`)."""

    code = models.ForeignKey(ChannelCode, on_delete=models.CASCADE, related_name="adds")
    relation = models.ForeignKey(FollowRelation, on_delete=models.CASCADE, related_name="+")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+")
    employee = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    added_at = models.DateTimeField(_("添加时间"), default=timezone.now)
    day = models.DateField(_("日期"))
    ended_at = models.DateTimeField(_("流失时间"), null=True, blank=True)
    # Enterprise tags the trigger added (ids), for the code's page and the audit's reader.
    tags_added = models.JSONField(default=list, blank=True)

    class Meta:
        verbose_name = pgettext_lazy("模型", "渠道新增客户")
        verbose_name_plural = pgettext_lazy("模型复数", "渠道新增客户")
        ordering = ["-added_at", "-id"]
        indexes = [
            models.Index(fields=["code", "day", "employee"], name="channeladd_code_day_emp"),
            models.Index(fields=["relation"], name="channeladd_relation"),
        ]
        constraints = [
            # One open add per relation: a second fire for the same relation without its end is refused.
            models.UniqueConstraint("relation", condition=Q(ended_at__isnull=True), name="channeladd_one_open"),
        ]
