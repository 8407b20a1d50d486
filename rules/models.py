"""智能标签 keyword rules: the rules, their hit log, the once-only record, the matching queue and
back-test results."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from customers.models import Customer, Job, Message
from org.models import Department
from tagportal.querysets import RestrictedQuerySet
from tags.models import Tag


class RuleStatus(models.TextChoices):
    DRAFT = "draft", _("草稿")
    TESTING = "testing", _("测试中")
    LIVE = "live", _("已启用")
    PAUSED = "paused", _("已暂停")


MATCHING_STATUSES = (RuleStatus.LIVE, RuleStatus.TESTING)


class KeywordRuleQuerySet(RestrictedQuerySet):
    def restrict(self, actor, action: str = "view"):
        """Tag admins, enterprise admins and enterprise-level API clients manage keyword rules;
        nobody else sees them (404)."""
        if actor is not None and actor.manages_taxonomy:
            return self
        return self.none()


class KeywordRule(models.Model):
    """智能标签: tags a customer when their message contains one of `keywords` (rule 15)."""

    name = models.CharField(_("名称"), max_length=100)
    keywords = models.JSONField(_("关键词"), default=list)
    exclude_keywords = models.JSONField(_("排除关键词"), default=list, blank=True)
    directions = models.JSONField(_("消息方向"), default=list)
    min_hits = models.PositiveIntegerField(_("触发次数"), default=1)
    window_days = models.PositiveIntegerField(_("统计天数"), null=True, blank=True)
    status = models.CharField(_("状态"), max_length=16, choices=RuleStatus.choices, default=RuleStatus.DRAFT,
                              db_index=True)
    tags = models.ManyToManyField(Tag, related_name="keyword_rules", verbose_name=_("添加标签"))
    exclude_tags = models.ManyToManyField(Tag, related_name="excluding_keyword_rules", blank=True,
                                          verbose_name=_("排除标签"))
    employees = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="keyword_rules", blank=True,
                                       verbose_name=_("适用成员"))
    departments = models.ManyToManyField(Department, related_name="keyword_rules", blank=True,
                                         verbose_name=_("适用部门"))
    sample_customers = models.ManyToManyField(Customer, related_name="sample_of_keyword_rules", blank=True,
                                              verbose_name=_("样本客户"))
    hit_count = models.IntegerField(_("命中次数"), default=0)
    tagged_count = models.IntegerField(_("已打标签客户"), default=0)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                   related_name="+")
    created_at = models.DateTimeField(_("创建时间"), default=timezone.now)
    updated_at = models.DateTimeField(_("更新时间"), default=timezone.now)

    objects = KeywordRuleQuerySet.as_manager()

    class Meta:
        verbose_name = pgettext_lazy("模型", "智能标签")
        verbose_name_plural = pgettext_lazy("模型复数", "智能标签")
        ordering = ["-id"]

    def __str__(self) -> str:
        return self.name

    @property
    def actor_label(self) -> str:
        """How the audit names this rule (`TagEvent.actor_label`); undo finds its rows by the prefix."""
        return f"{rule_label_prefix(self.pk)}{self.name}"[:100]


def rule_label_prefix(rule_id: int) -> str:
    return f"智能标签#{rule_id} "


class HitOutcome(models.TextChoices):
    TAGGED = "tagged", _("已打标签")
    EXCLUDED = "excluded", _("已排除")
    ALREADY = "already", _("已有标签")
    SHADOW = "shadow", _("测试（未打）")
    COUNTED = "counted", _("计数中")  # below min_hits within the window


class RuleHit(models.Model):
    """命中记录: one rule matching one message, and what came of it. Unique per (rule, message), so a
    message is never counted twice for a rule."""

    rule = models.ForeignKey(KeywordRule, on_delete=models.CASCADE, related_name="hits")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+", db_constraint=False,
                                 db_index=False)
    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="+", db_constraint=False,
                                db_index=False)
    keyword = models.CharField(_("关键词"), max_length=50)
    outcome = models.CharField(_("结果"), max_length=16, choices=HitOutcome.choices)
    reason = models.CharField(_("原因"), max_length=100, blank=True, default="")
    sent_at = models.DateTimeField(_("消息时间"))
    created_at = models.DateTimeField(_("时间"), default=timezone.now)

    class Meta:
        verbose_name = pgettext_lazy("模型", "命中记录")
        verbose_name_plural = pgettext_lazy("模型复数", "命中记录")
        ordering = ["-id"]
        constraints = [models.UniqueConstraint("rule", "message", name="rulehit_unique_rule_message")]
        indexes = [
            models.Index(fields=["rule", "outcome", "customer"], name="rulehit_rule_outcome"),
            models.Index(fields=["rule", "customer", "sent_at"], name="rulehit_rule_customer_time"),
            models.Index(fields=["message"], name="rulehit_message"),
        ]


class RuleTagged(models.Model):
    """A rule tagged this customer: it never does again (once only, rule 15), even if the tag is removed."""

    rule = models.ForeignKey(KeywordRule, on_delete=models.CASCADE, related_name="tagged")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+", db_constraint=False,
                                 db_index=False)
    tagged_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint("rule", "customer", name="ruletagged_unique_rule_customer")]
        indexes = [models.Index(fields=["customer"], name="ruletagged_customer")]


class PendingMessage(models.Model):
    """The matching queue: a message id waits here from the ingest's commit until a worker has matched
    it; the worker deletes it in the transaction that writes its hits and tags (exactly once)."""

    message_id = models.BigIntegerField(primary_key=True)


class Backtest(models.Model):
    """回测: a RULE_BACKTEST job's result, written chunk by chunk with the job's progress."""

    job = models.OneToOneField(Job, on_delete=models.CASCADE, related_name="backtest")
    rule = models.ForeignKey(KeywordRule, on_delete=models.CASCADE, related_name="backtests")
    since = models.DateField()
    until = models.DateField()
    keywords = models.JSONField(default=dict)  # keyword -> messages
    samples = models.JSONField(default=list)  # [{"customer", "msgid", "content", "keyword", "spans"}]
    created_at = models.DateTimeField(default=timezone.now)


class BacktestCustomer(models.Model):
    """A customer a back-test would tag (what its "tag them now" button hands to a bulk job)."""

    backtest = models.ForeignKey(Backtest, on_delete=models.CASCADE, related_name="customers")
    customer_id = models.BigIntegerField()

    class Meta:
        constraints = [models.UniqueConstraint("backtest", "customer_id", name="backtest_customer_unique")]
