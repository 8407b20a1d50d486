"""Admin of channel codes (渠道活码): the list (QR thumbnails, adds today and in total), the form (the
portrait's tag tree picker, locked groups usable), and each code's page: its QR with print-size
downloads (and WeCom's own QR when connected), who receives now and the warnings, a preview of what a
new customer gets, the statistics as ECharts charts with a CSV export and links to the customers.

Who sees and manages which code is `selectors.codes_for` (also the API's); writes go through
`channels.services`.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from org.actors import Actor
from org.models import Role
from tagportal.errors import DomainError, ValidationFailed

from . import qr, services
from .api.views import qr_response, stats_csv
from .forms import ChannelCodeForm
from .models import ChannelAdd, ChannelCode
from .selectors import (
    code_stats,
    code_warnings,
    codes_for,
    may_change_code,
    may_manage_codes,
    parse_range,
    receivers_now,
    with_counts,
)

PORTAL_ROLES = (Role.ENTERPRISE_ADMIN, Role.TAG_ADMIN, Role.MANAGER, Role.STAFF)


def _actor(request) -> Actor:
    return Actor(employee=request.user)


def customers_list_url(**params) -> str:
    return reverse("admin:customers_customer_changelist") + "?" + urlencode(params)


@admin.register(ChannelCode)
class ChannelCodeAdmin(admin.ModelAdmin):
    """渠道活码."""

    list_display = ("qr_thumb", "name_cell", "employees_cell", "tags_cell", "added_today", "added_total",
                    "enabled_cell")
    list_display_links = ("name_cell",)
    list_filter = ("enabled",)
    search_fields = ("name", "state")
    list_per_page = 50
    sortable_by = ()
    change_list_template = "admin/channels/channelcode/change_list.html"
    page_template = "admin/channels/channelcode/code_page.html"
    form_template = "admin/channels/channelcode/code_form.html"

    # ---- permissions: the roles and `codes_for`, nothing else

    def has_module_permission(self, request):
        user = request.user
        return user.is_active and user.has_role(*PORTAL_ROLES)

    def has_view_permission(self, request, obj=None):
        if not self.has_module_permission(request):
            return False
        return obj is None or codes_for(_actor(request), "view").filter(pk=obj.pk).exists()

    def has_add_permission(self, request):
        return self.has_module_permission(request) and may_manage_codes(_actor(request))

    def has_change_permission(self, request, obj=None):
        if not self.has_add_permission(request):
            return False
        return obj is None or may_change_code(_actor(request), obj)

    def has_delete_permission(self, request, obj=None):
        return self.has_change_permission(request, obj)

    def get_queryset(self, request):
        return (with_counts(codes_for(_actor(request), "view"))
                .prefetch_related("employees", "tags__group").select_related("department"))

    # ---- the list

    @admin.display(description=gettext_lazy("二维码"))
    def qr_thumb(self, code):
        url = reverse("admin:channels_channelcode_qr", args=[code.pk, "svg"])
        return format_html('<img class="tp-qr-thumb" src="{}" alt="{}" loading="lazy" width="56" height="56">',
                           url, code.state)

    @admin.display(description=gettext_lazy("名称"))
    def name_cell(self, code):
        return format_html('<strong>{}</strong><div class="tp-muted"><code>{}</code></div>', code.name, code.state)

    @admin.display(description=gettext_lazy("接待成员"))
    def employees_cell(self, code):
        return _("、").join(e.name or e.userid for e in code.employees.all())

    @admin.display(description=gettext_lazy("标签"))
    def tags_cell(self, code):
        return format_html_join("", '<span class="tp-chip tp-c{}">{}</span>',
                                ((t.group_id % 8, t.name) for t in code.tags.all()))

    @admin.display(description=gettext_lazy("今日新增"))
    def added_today(self, code):
        return code.added_today

    @admin.display(description=gettext_lazy("累计新增"))
    def added_total(self, code):
        return code.added_total

    @admin.display(description=gettext_lazy("状态"))
    def enabled_cell(self, code):
        return _("启用") if code.enabled else _("停用")

    # ---- extra URLs

    def get_urls(self):
        prefix = f"{self.opts.app_label}_{self.opts.model_name}"
        return [
            path("<path:object_id>/qr.<str:kind>", self.admin_site.admin_view(self.qr_view), name=f"{prefix}_qr"),
            path("<path:object_id>/stats.csv", self.admin_site.admin_view(self.stats_csv_view),
                 name=f"{prefix}_stats_csv"),
            *super().get_urls(),
        ]

    def _visible(self, request, object_id) -> ChannelCode:
        code = self.get_queryset(request).filter(pk=unquote(object_id)).first() if str(
            unquote(object_id)).isdigit() else None
        if code is None:
            raise Http404(_("没有这个渠道活码，或你无权查看。"))
        return code

    def qr_view(self, request, object_id, kind):
        if kind not in ("png", "svg"):
            raise Http404
        try:
            return qr_response(self._visible(request, object_id), request, kind)
        except ValidationFailed as exc:
            raise Http404(exc.message) from exc

    def stats_csv_view(self, request, object_id):
        code = self._visible(request, object_id)
        try:
            start, end = parse_range(request.GET)
        except ValidationFailed:
            start, end = parse_range({})
        return stats_csv(code, code_stats(code, start=start, end=end))

    # ---- add / change / delete

    def add_view(self, request, form_url="", extra_context=None):
        if not self.has_add_permission(request):
            raise PermissionDenied
        return self._form_page(request, None)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        code = self._visible(request, object_id)
        can_change = self.has_change_permission(request, code)
        if request.method == "POST" or request.GET.get("edit"):
            if not can_change:
                raise PermissionDenied
            return self._form_page(request, code)
        return self._code_page(request, code, can_change)

    def _form_page(self, request, code: ChannelCode | None):
        actor = _actor(request)
        form = ChannelCodeForm(request.POST if request.method == "POST" else None, actor=actor, code=code)
        if request.method == "POST" and form.is_valid():
            try:
                if code is None:
                    saved = services.channel_code_create(actor=actor, data=form.service_data())
                else:
                    saved = services.channel_code_update(actor=actor, code=code, data=form.service_data())
            except DomainError as exc:
                if not form.add_service_errors(exc):
                    form.add_error(None, exc.message)
            else:
                messages.success(request, _("渠道活码“%(name)s”已保存。") % {"name": saved.name})
                return HttpResponseRedirect(reverse("admin:channels_channelcode_change", args=[saved.pk]))
        context = {
            **self.admin_site.each_context(request),
            "title": _("编辑渠道活码") if code else _("新建渠道活码"),
            "opts": self.opts,
            "code": code,
            "original": code,
            "form": form,
            "tags_form": form.tags_form,
            "has_view_permission": True,
            "frozen_state": bool(code and ChannelAdd.objects.filter(code=code).exists()),
            "changelist_url": reverse("admin:channels_channelcode_changelist"),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, self.form_template, context)

    def _code_page(self, request, code: ChannelCode, can_change: bool):
        try:
            start, end = parse_range(request.GET)
            range_error = None
        except ValidationFailed as exc:
            start, end = parse_range({})
            range_error = exc.message
        stats = code_stats(code, start=start, end=end)
        receivers = receivers_now(code)
        tags = sorted(code.tags.select_related("group"), key=lambda t: (t.group.tree_id, t.group.lft, t.order))
        for tag in tags:
            tag.colour = tag.group_id % 8
        customers_url = customers_list_url(state=code.state)
        days_spec = {
            "kind": "bar",
            "categories": [d["date"][5:] for d in stats.days],
            "series": [
                {"name": _("新增"), "data": [d["added"] for d in stats.days],
                 "links": [customers_list_url(state=code.state, added_from=d["date"], added_to=d["date"])
                           for d in stats.days]},
                {"name": _("流失"), "data": [d["lost"] for d in stats.days]},
                {"name": _("仍在跟进"), "data": [d["still_followed"] for d in stats.days]},
            ],
        }
        employees_spec = {
            "kind": "hbar",
            "categories": [e["name"] or e["employee"] for e in stats.employees],
            "series": [
                {"name": _("新增"), "data": [e["added"] for e in stats.employees],
                 "links": [customers_list_url(state=code.state, follower=e["employee"]) for e in stats.employees]},
                {"name": _("流失"), "data": [e["lost"] for e in stats.employees]},
            ],
        }
        example_employee = receivers.next or code.employees.first()
        context = {
            **self.admin_site.each_context(request),
            "title": code.name,
            "opts": self.opts,
            "code": code,
            "original": code,
            "can_change": can_change,
            "has_view_permission": True,
            "tags": tags,
            "receivers": receivers,
            "warnings": code_warnings(code),
            "stats": stats,
            "range_error": range_error,
            "days_spec": days_spec,
            "employees_spec": employees_spec,
            "chart_height": max(160, 36 * len(stats.employees) + 60),
            "customers_url": customers_url,
            "qr_svg": qr.inline_svg(qr.qr_payload(code, request)),
            "landing_url": request.build_absolute_uri(qr.landing_path(code)),
            "sizes": qr.SIZES_CM,
            "remark_example": services.render_remark(code, customer_name=_("王先生"), employee=example_employee)
            if code.remark_template and example_employee else "",
            "added_total": ChannelAdd.objects.filter(code=code).count(),
            "changelist_url": reverse("admin:channels_channelcode_changelist"),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, self.page_template, context)

    def delete_model(self, request, obj):
        services.channel_code_delete(actor=_actor(request), code=obj)

    def delete_queryset(self, request, queryset):
        for code in queryset:
            services.channel_code_delete(actor=_actor(request), code=code)

    def history_view(self, request, object_id, extra_context=None):
        return HttpResponseRedirect(reverse("admin:channels_channelcode_change", args=[object_id]))
