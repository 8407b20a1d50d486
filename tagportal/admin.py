"""The portal's admin site: Chinese branding and a front page per kind of user.

The Django admin is the portal. `PortalAdminSite` is the default site (see
`tagportal.apps.PortalAdminConfig`), so every app's `@admin.register` lands here. The front
page shows, for each role the user holds, the pages of their daily work; links to admin pages
that are not (yet) installed or that the user may not view are left out.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext_lazy as _


@dataclass(frozen=True)
class PortalLink:
    label: str
    url_name: str  # "admin:<app>_<model>_changelist" (permission derived from it) or any URL name
    hint: str = ""
    permission: str | None = None


@dataclass(frozen=True)
class PortalSection:
    key: str
    title: str
    description: str
    roles: tuple[str, ...]
    links: tuple[PortalLink, ...]


SECTIONS = (
    PortalSection(
        "tag_admin",
        _("标签管理"),
        _("维护企业标签体系：标签组（最多三级）、可见范围、锁定与单选。"),
        ("enterprise_admin", "tag_admin"),
        (
            PortalLink(_("标签组与标签"), "admin:tags_taggroup_changelist", _("新建、排序、设置可见部门")),
            PortalLink(_("企业标签"), "admin:tags_tag_changelist", _("查找、改名、合并标签")),
            PortalLink(_("客户"), "admin:customers_customer_changelist", _("按标签筛选客户、批量打标签")),
            PortalLink(_("批量任务"), "admin:customers_job_changelist", _("进度、结果与撤销")),
            PortalLink(_("智能标签"), "admin:rules_keywordrule_changelist", _("客户说到关键词时自动打标签"),
                       permission=""),
            PortalLink(_("数据看板"), "admin:insights_snapshot_changelist", _("标签覆盖率、未打标签的客户、使用情况"),
                       permission=""),
            PortalLink(_("渠道活码"), "admin:channels_channelcode_changelist", _("扫码添加的客户自动打标签"),
                       permission=""),
        ),
    ),
    PortalSection(
        "hr",
        _("人事"),
        _("管理成员、角色与部门；员工离职时把客户交给继承人。"),
        ("enterprise_admin", "hr"),
        (
            PortalLink(_("成员"), "admin:org_employee_changelist", _("角色、所属部门、在职状态")),
            PortalLink(_("离职继承"), "admin:customers_transfer_pending", _("待分配离职成员：把客户交接给继承人"),
                       permission=""),
            PortalLink(_("部门"), "admin:org_department_changelist", _("组织架构树")),
            PortalLink(_("数据看板"), "admin:insights_snapshot_changelist", _("新增与流失客户、跟进情况"),
                       permission=""),
        ),
    ),
    PortalSection(
        "manager",
        _("销售经理"),
        _("查看所管部门成员的客户、客户画像与标签。"),
        ("enterprise_admin", "manager"),
        (
            PortalLink(_("客户"), "admin:customers_customer_changelist", _("所管部门成员跟进的客户")),
            PortalLink(_("批量任务"), "admin:customers_job_changelist", _("批量打标签的进度")),
            PortalLink(_("渠道活码"), "admin:channels_channelcode_changelist", _("所管部门的渠道活码与数据"),
                       permission=""),
            PortalLink(_("成员"), "admin:org_employee_changelist", _("团队成员")),
            PortalLink(_("数据看板"), "admin:insights_snapshot_changelist", _("团队的新增与流失、标签与跟进"),
                       permission=""),
        ),
    ),
    PortalSection(
        "staff",
        _("我的工作"),
        _("我跟进的客户：画像、标签与备注。"),
        ("staff",),
        (
            PortalLink(_("我的客户"), "admin:customers_customer_changelist", _("给客户打标签、写备注")),
            PortalLink(_("数据看板"), "admin:insights_snapshot_changelist", _("我的客户：新增、标签与跟进"),
                       permission=""),
            PortalLink(_("渠道活码"), "admin:channels_channelcode_changelist", _("把客户带给我的渠道活码"),
                       permission=""),
        ),
    ),
    PortalSection(
        "enterprise_admin",
        _("系统"),
        _("对接 CRM 与企业微信的 API 密钥，以及接口文档。"),
        ("enterprise_admin",),
        (
            PortalLink(_("API 客户端"), "admin:org_apiclient_changelist", _("创建或吊销 API 密钥")),
            PortalLink(_("接口文档"), "api-docs", _("REST API（OpenAPI）"), permission=""),
            PortalLink(_("企业微信连接"), "admin:wecom_status", _("回调地址、事件、同步队列、全量同步"), permission=""),
            PortalLink(_("登录锁定"), "admin:login_lockouts", _("多次登录失败被锁定的账号，可解锁"), permission=""),
        ),
    ),
)


def _link_permission(link: PortalLink) -> str | None:
    if link.permission is not None:
        return link.permission or None
    name = link.url_name.removeprefix("admin:")
    if name.endswith("_changelist"):
        app_label, _sep, model = name.removesuffix("_changelist").partition("_")
        return f"{app_label}.view_{model}"
    return None


def portal_sections(request) -> list[dict]:
    """The front page's sections for this user: their roles' sections, links they may open."""
    user = request.user
    roles = set(getattr(user, "roles", ()) or ())
    sections = []
    for section in SECTIONS:
        if not roles.intersection(section.roles):
            continue
        links = []
        for link in section.links:
            perm = _link_permission(link)
            if perm and not user.has_perm(perm):
                continue
            try:
                url = reverse(link.url_name)
            except NoReverseMatch:
                continue  # that app's admin is not installed (yet)
            links.append({"label": link.label, "url": url, "hint": link.hint})
        if links:
            sections.append(
                {"key": section.key, "title": section.title, "description": section.description, "links": links}
            )
    return sections


class PortalAuthenticationForm(AdminAuthenticationForm):
    """The login form: a departed employee who types the right password is told so plainly;
    a wrong password gets the generic message, revealing nothing."""

    error_messages = {
        **AdminAuthenticationForm.error_messages,
        # Django's says "请输入一个正确的工作人员账户 账号 和密码" / "…for a staff account": everyone
        # signs in here, and the field's name does not belong in the sentence.
        "invalid_login": _("账号或密码不正确。注意两者都区分大小写。"),
        "departed": _("该账号已离职，不能登录。"),
    }

    def get_invalid_login_error(self):
        username = self.cleaned_data.get("username")
        password = self.cleaned_data.get("password")
        user = get_user_model()._default_manager.filter(userid=username).first() if username else None
        if user is not None and user.is_departed and password and user.check_password(password):
            return ValidationError(self.error_messages["departed"], code="departed")
        return super().get_invalid_login_error()


class PortalAdminSite(admin.AdminSite):
    """tagportal 客户标签平台: the Django admin as the portal."""

    site_header = _("tagportal 客户标签平台")
    site_title = _("tagportal")
    index_title = _("工作台")
    site_url = None  # the portal is the site: no "view site" link
    login_form = PortalAuthenticationForm

    def get_urls(self):
        from django.urls import path

        from tagportal.auth import login_lockouts_view

        return [
            path("login-lockouts/", self.admin_view(login_lockouts_view), name="login_lockouts"),
            *super().get_urls(),
        ]

    def index(self, request, extra_context=None):
        context = {"portal_sections": portal_sections(request), **(extra_context or {})}
        return super().index(request, context)
