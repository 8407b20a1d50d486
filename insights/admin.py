"""数据看板 in the admin: the dashboard page (in the menu as 数据看板), each panel's CSV, and a
"refresh now" for those who manage the taxonomy.

The page is the changelist of `Snapshot` (so the admin's menu and front page list it like any other
page); its charts are drawn in the browser from `GET /api/v1/insights/{panel}/` (the session's
employee, the same numbers as any API caller acting as them), one request per panel, so a slower
panel never holds the others up.
"""

from __future__ import annotations

import csv
import io

from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from org.models import Role
from tagportal.errors import ValidationFailed

from .models import Snapshot
from .registry import SECTIONS, get_panel, panels_for
from .selectors import DEFAULT_DAYS, department_choices, latest_snapshot, parse_panel_query

SECTION_TITLES = {
    "tags": gettext_lazy("标签覆盖"),
    "activity": gettext_lazy("标签变更与跟进"),
    "customers": gettext_lazy("客户增减"),
    "channels": gettext_lazy("渠道活码"),
    "rules": gettext_lazy("智能标签"),
}


def may_open_dashboard(user) -> bool:
    """Every active employee with a role opens the dashboard; each panel decides what it shows."""
    return bool(getattr(user, "is_active", False) and getattr(user, "roles", None))


def may_refresh(user) -> bool:
    return user.has_role(Role.ENTERPRISE_ADMIN, Role.TAG_ADMIN)


@admin.register(Snapshot)
class DashboardAdmin(admin.ModelAdmin):
    """数据看板: the dashboard page and its CSV downloads."""

    def has_module_permission(self, request):
        return may_open_dashboard(request.user)

    def has_view_permission(self, request, obj=None):
        return may_open_dashboard(request.user)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_urls(self):
        info = f"{self.opts.app_label}_{self.opts.model_name}"
        view = self.admin_site.admin_view
        return [
            path("", view(self.dashboard_view), name=f"{info}_changelist"),
            path("<str:key>.csv", view(self.csv_view), name=f"{info}_csv"),
            path("refresh/", view(require_POST(self.refresh_view)), name=f"{info}_refresh"),
        ]

    def dashboard_view(self, request):
        if not self.has_view_permission(request):
            raise PermissionDenied
        viewer = request.user
        error = None
        try:
            q = parse_panel_query(request.GET, viewer=viewer)
        except ValidationFailed as exc:
            error = exc
            q = parse_panel_query({}, viewer=viewer)
            messages.error(request, _("参数无效，已显示最近 %(n)s 天：%(details)s") % {
                "n": DEFAULT_DAYS, "details": "；".join(f"{k}：{v}" for k, v in (exc.details or {}).items())})
        panels = panels_for(viewer)
        sections = []
        for key in sorted({p.section for p in panels}, key=lambda s: SECTIONS.get(s, 99)):
            sections.append({
                "key": key,
                "title": SECTION_TITLES.get(key, key),
                "panels": [p for p in panels if p.section == key],
            })
        params = {"from": q.date_from.isoformat(), "to": q.date_to.isoformat()}
        if q.department is not None:
            params["department"] = str(q.department.pk)
        snapshot = latest_snapshot()
        context = {
            **self.admin_site.each_context(request),
            "title": _("数据看板"),
            "opts": self.opts,
            "sections": sections,
            "query": q,
            "params": params,
            "query_string": "&".join(f"{k}={v}" for k, v in params.items()),
            "departments": department_choices(viewer),
            "snapshot": snapshot,
            "may_refresh": may_refresh(viewer),
            "api_base": reverse("insights-panels"),
            "filter_error": error,
            "today": timezone.localdate().isoformat(),
            "refresh_minutes": settings.INSIGHTS_REFRESH_MINUTES,
            "i18n_texts": {
                "untagged": _("{n} 位客户没有任何企业标签"),
                "untagged_share": _("（占 {share}%，共 {total} 位客户）"),
                "unused": _("{n} 个标签 {days} 天内没有人用过（共 {total} 个可见标签）"),
                "new_lost": _("新增 {new} 位 · 流失 {lost} 位"),
                "changes": _("共 {n} 次标签变更"),
                "customers": _("共 {n} 位客户"),
                "added": _("共 {n} 位新增客户"),
                "hits": _("共 {n} 次命中"),
                "tagged": _("共 {n} 位客户被打上标签"),
                "as_of": _("数据截至 {t}"),
                "live": _("实时统计"),
                "empty": _("暂无数据"),
                "failed": _("加载失败"),
            },
        }
        return TemplateResponse(request, "admin/insights/dashboard.html", context)

    def csv_view(self, request, key: str):
        """One panel's data as CSV (UTF-8 with BOM, so Excel opens the Chinese labels)."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        panel = get_panel(key)
        if panel is None or not panel.allowed(request.user):
            raise Http404(_("未知的面板：%(key)s") % {"key": key})
        try:
            q = parse_panel_query(request.GET, viewer=request.user)
        except ValidationFailed as exc:
            return HttpResponse(f"{exc.message}: {exc.details}", status=400, content_type="text/plain; charset=utf-8")
        data = panel.selector(q)
        out = io.StringIO()
        out.write("\ufeff")
        writer = csv.writer(out)
        for row in data.csv_rows():
            writer.writerow(row)
        name = f"{key}_{q.date_from:%Y%m%d}-{q.date_to:%Y%m%d}.csv" if panel.uses_dates else f"{key}.csv"
        response = HttpResponse(out.getvalue(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response

    def refresh_view(self, request):
        if not may_refresh(request.user):
            raise PermissionDenied
        from .tasks import refresh_aggregates

        refresh_aggregates.delay()
        messages.success(request, _("已开始重新统计，稍后刷新页面即可看到最新数据。"))
        back = reverse("admin:insights_snapshot_changelist")
        query = request.POST.get("query", "")
        return HttpResponseRedirect(f"{back}?{query}" if query else back)
