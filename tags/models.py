"""Enterprise tag groups (a tree, at most 3 levels), their tags, and employees' personal tags."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models.functions import Coalesce, Lower
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy
from mptt.models import MPTTModel, TreeForeignKey
from mptt.querysets import TreeQuerySet

from org.models import Department
from tagportal.querysets import RestrictedQuerySet

MAX_GROUP_DEPTH = 3  # levels 0, 1, 2
NAME_MAX_LENGTH = 30


class TagGroupQuerySet(TreeQuerySet, RestrictedQuerySet):
    def restrict(self, actor, action: str = "view"):
        """Tag admins and enterprise level manage every group; others reach only visible ones
        (and may still not change them: the services answer 403 for those)."""
        from .selectors import visible_tag_groups

        if actor.is_enterprise or actor.manages_taxonomy:
            return self
        return self.filter(pk__in=visible_tag_groups(actor.employee).values("pk"))


class TagQuerySet(RestrictedQuerySet):
    def restrict(self, actor, action: str = "view"):
        from .selectors import visible_tags

        if actor.is_enterprise or actor.manages_taxonomy:
            return self
        return self.filter(pk__in=visible_tags(actor.employee).values("pk"))


class PersonalTagQuerySet(RestrictedQuerySet):
    def restrict(self, actor, action: str = "view"):
        """The acting employee's own personal tags, whoever they are (rule 9)."""
        if actor.employee is None:
            return self.none()
        return self.filter(owner=actor.employee)


class TagGroup(MPTTModel):
    """标签组: a folder of enterprise tags, nested up to 3 levels.

    `departments` is the scope: empty means every employee; otherwise only members of those
    exact departments (never inherited by sub-departments). A nested group is visible only
    when it and all its ancestors are.
    """

    name = models.CharField(_("名称"), max_length=NAME_MAX_LENGTH)
    parent = TreeForeignKey(
        "self", verbose_name=_("上级标签组"), null=True, blank=True, on_delete=models.PROTECT, related_name="children"
    )
    order = models.IntegerField(_("排序"), default=0)
    departments = models.ManyToManyField(
        Department,
        verbose_name=_("可见范围"),
        blank=True,
        related_name="tag_groups",
        help_text=_("留空表示全员可见；否则仅所列部门的成员可见（下级部门不继承）。"),
    )
    locked = models.BooleanField(_("锁定"), default=False, help_text=_("员工和经理可见但不能打或移除。"))
    single_choice = models.BooleanField(_("单选"), default=False, help_text=_("一个客户最多有本组的一个标签。"))
    external_id = models.CharField(_("企业微信标签组ID"), max_length=64, null=True, blank=True, unique=True)
    created_at = models.DateTimeField(_("创建时间"), auto_now_add=True)
    updated_at = models.DateTimeField(_("更新时间"), auto_now=True)

    objects = TagGroupQuerySet.as_manager()

    class MPTTMeta:
        # `name` breaks ties of `order` (names are unique among siblings), so the tree order is a
        # total order: `rebuild()` reproduces exactly what inserts and moves built.
        order_insertion_by = ["order", "name"]

    class Meta:
        verbose_name = pgettext_lazy("模型", "标签组")
        verbose_name_plural = pgettext_lazy("模型复数", "标签组")
        constraints = [
            models.UniqueConstraint(
                Lower("name"), Coalesce("parent", models.Value(0)), name="tag_group_unique_sibling_name"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Tag(models.Model):
    """企业标签: a company-wide tag inside one group, applied to customers."""

    group = models.ForeignKey(TagGroup, verbose_name=_("标签组"), on_delete=models.PROTECT, related_name="tags")
    name = models.CharField(_("名称"), max_length=NAME_MAX_LENGTH)
    order = models.IntegerField(_("排序"), default=0)
    external_id = models.CharField(_("企业微信标签ID"), max_length=64, null=True, blank=True, unique=True)
    created_at = models.DateTimeField(_("创建时间"), auto_now_add=True)

    objects = TagQuerySet.as_manager()

    class Meta:
        verbose_name = pgettext_lazy("模型", "企业标签")
        verbose_name_plural = pgettext_lazy("模型复数", "企业标签")
        ordering = ["group_id", "order", "id"]
        constraints = [
            models.UniqueConstraint("group", Lower("name"), name="tag_unique_name_in_group"),
        ]

    def __str__(self) -> str:
        return self.name


class PersonalTag(models.Model):
    """个人标签: an employee's private tag; visible to that employee alone, admins included."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("所有者"), on_delete=models.PROTECT, related_name="personal_tags"
    )
    name = models.CharField(_("名称"), max_length=NAME_MAX_LENGTH)
    created_at = models.DateTimeField(_("创建时间"), auto_now_add=True)

    objects = PersonalTagQuerySet.as_manager()

    class Meta:
        verbose_name = pgettext_lazy("模型", "个人标签")
        verbose_name_plural = pgettext_lazy("模型复数", "个人标签")
        ordering = ["owner_id", "name"]
        constraints = [
            models.UniqueConstraint("owner", Lower("name"), name="personal_tag_unique_name_per_owner"),
        ]

    def __str__(self) -> str:
        return self.name
