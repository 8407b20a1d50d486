"""Departments (a tree) and employees (the user model), with their roles, and API clients."""

from __future__ import annotations

import hashlib
import secrets

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy
from mptt.managers import TreeManager
from mptt.models import MPTTModel, TreeForeignKey
from mptt.querysets import TreeQuerySet

from tagportal.querysets import RestrictedQuerySet


class Role(models.TextChoices):
    """The five roles; each is a Django group of the same name (created by a data migration)."""

    ENTERPRISE_ADMIN = "enterprise_admin", _("企业管理员")
    TAG_ADMIN = "tag_admin", _("标签管理员")
    HR = "hr", _("人事")
    MANAGER = "manager", _("销售经理")
    STAFF = "staff", _("员工")


class DepartmentQuerySet(TreeQuerySet, RestrictedQuerySet):
    def restrict(self, actor, action: str = "view"):
        """The org chart is visible to every employee and API client. Who may change it is
        decided by the services (enterprise admins only), which answer 403, not 404."""
        return self.all()


class Department(MPTTModel):
    """部门: a node of the company's department tree (WeCom's department, by `external_id`)."""

    name = models.CharField(_("名称"), max_length=64)
    parent = TreeForeignKey(
        "self", verbose_name=_("上级部门"), null=True, blank=True, on_delete=models.PROTECT, related_name="children"
    )
    order = models.IntegerField(_("排序"), default=0)
    external_id = models.CharField(_("企业微信部门ID"), max_length=64, null=True, blank=True, unique=True)

    objects = TreeManager.from_queryset(DepartmentQuerySet)()

    class MPTTMeta:
        order_insertion_by = ["order"]

    class Meta:
        verbose_name = pgettext_lazy("模型", "部门")
        verbose_name_plural = pgettext_lazy("模型复数", "部门")

    def __str__(self) -> str:
        return self.name


class EmployeeStatus(models.TextChoices):
    ACTIVE = "active", _("在职")
    DEPARTED = "departed", _("离职")


class EmployeeQuerySet(RestrictedQuerySet):
    def restrict(self, actor, action: str = "view"):
        """Every employee and API client sees the address book (departed ones included, with
        their status). Writes are checked by the services (enterprise admins and HR)."""
        return self.all()


class EmployeeManager(BaseUserManager.from_queryset(EmployeeQuerySet)):
    use_in_migrations = True

    def create_user(self, userid: str, password: str | None = None, **fields):
        if not userid:
            raise ValueError("userid is required")
        user = self.model(userid=userid, **fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, userid: str, password: str | None = None, **fields):
        fields.setdefault("is_staff", True)
        fields.setdefault("is_superuser", True)
        user = self.create_user(userid, password, **fields)
        from django.contrib.auth.models import Group

        group, _created = Group.objects.get_or_create(name=Role.ENTERPRISE_ADMIN)
        user.groups.add(group)
        return user


class Employee(AbstractBaseUser, PermissionsMixin):
    """成员: an employee, the portal's user. Roles are Django groups named after `Role`."""

    userid = models.CharField(_("账号"), max_length=64, unique=True,
                              help_text=_("企业微信里成员的账号（UserID），也是登录门户的用户名。"))
    name = models.CharField(_("姓名"), max_length=64)
    departments = models.ManyToManyField(
        Department, verbose_name=_("所属部门"), blank=True, related_name="members"
    )
    managed_departments = models.ManyToManyField(
        Department,
        verbose_name=_("管理的部门"),
        blank=True,
        related_name="managers",
        help_text=_("销售经理可见这些部门成员的客户；只包含明确列出的部门，不含下级部门。"),
    )
    status = models.CharField(
        _("状态"), max_length=16, choices=EmployeeStatus.choices, default=EmployeeStatus.ACTIVE, db_index=True
    )
    departed_at = models.DateTimeField(_("离职时间"), null=True, blank=True)
    is_staff = models.BooleanField(_("可登录管理后台"), default=True)
    is_active = models.BooleanField(_("有效"), default=True)
    date_joined = models.DateTimeField(_("加入时间"), default=timezone.now)

    objects = EmployeeManager()

    USERNAME_FIELD = "userid"
    REQUIRED_FIELDS = ["name"]

    class Meta:
        verbose_name = pgettext_lazy("模型", "成员")
        verbose_name_plural = pgettext_lazy("模型复数", "成员")
        ordering = ["userid"]

    def __str__(self) -> str:
        return f"{self.name} ({self.userid})" if self.name else self.userid

    def get_full_name(self) -> str:
        return self.name

    def get_short_name(self) -> str:
        return self.name

    @property
    def is_departed(self) -> bool:
        return self.status == EmployeeStatus.DEPARTED

    @property
    def roles(self) -> set[str]:
        """The role names this employee holds (cached per instance)."""
        if not hasattr(self, "_roles_cache"):
            valid = set(Role.values)
            self._roles_cache = {g.name for g in self.groups.all() if g.name in valid}
            if self.is_superuser:
                self._roles_cache.add(Role.ENTERPRISE_ADMIN)
        return self._roles_cache

    def has_role(self, *roles: str) -> bool:
        return bool(self.roles.intersection(roles))

    def save(self, *args, **kwargs):
        # A departed employee can no longer log in or act: the two flags never disagree.
        if self.status == EmployeeStatus.DEPARTED:
            self.is_active = False
            self.departed_at = self.departed_at or timezone.now()
        super().save(*args, **kwargs)


def _hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class ApiClient(models.Model):
    """API 客户端: an enterprise-level credential for a CRM or connector. Only a hash is kept."""

    name = models.CharField(_("名称"), max_length=100, unique=True)
    key_prefix = models.CharField(_("密钥前缀"), max_length=12, editable=False)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    read_only = models.BooleanField(_("只读"), default=False, help_text=_("只读密钥不能写入。"))
    created_at = models.DateTimeField(_("创建时间"), auto_now_add=True)
    last_used_at = models.DateTimeField(_("最近使用"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("吊销时间"), null=True, blank=True)

    class Meta:
        verbose_name = pgettext_lazy("模型", "API 客户端")
        verbose_name_plural = pgettext_lazy("模型复数", "API 客户端")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    @property
    def scope(self) -> str:
        return "read" if self.read_only else "write"

    def set_new_key(self) -> str:
        """Give the client a fresh key; return it (the only time it is ever visible)."""
        key = "tp_" + secrets.token_urlsafe(32)
        self.key_prefix = key[:10]
        self.key_hash = _hash_key(key)
        return key

    @classmethod
    def find_by_key(cls, key: str) -> ApiClient | None:
        return cls.objects.filter(key_hash=_hash_key(key)).first()
