"""企业微信连接: the status page of the WeCom connection, for enterprise admins.

One page (`admin:wecom_status`): configured or not and what is missing, the callback URL to paste
into WeCom's console, the events received (last one, processed / failed with their errors and a
retry button), the outbox towards WeCom (tag changes and corp-tag changes waiting, failed ones and
a retry button), hand-overs waiting for WeCom, and the last full pull with its live progress bar
and a button that starts a new one. Registered on the admin site as the model 企业微信连接
(`OutboxCursor`, the connection's one state row), whose list opens this page.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.http import HttpRequest, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext as _

from customers.jobs import job_progress
from customers.models import JobStatus
from org.actors import Actor
from org.models import Role
from tagportal.errors import DomainError

from . import conf
from .models import EventStatus, WeComEvent
from .outbox import outbox_backlog, outbox_retry_failed
from .pull import latest_pull, wecom_sync_start
from .sync_models import (
    FINAL_TRANSFER_STATUSES,
    OutboxCursor,
    OutboxItem,
    OutboxStatus,
    TaxonomyPush,
    WeComTransferItem,
)

RECENT = 20


def may_view(request: HttpRequest) -> bool:
    user = request.user
    return bool(user.is_active and (user.is_superuser or user.has_role(Role.ENTERPRISE_ADMIN)))


def _missing_settings() -> list[str]:
    from django.conf import settings

    names = ("WECOM_CORP_ID", "WECOM_SECRET", "WECOM_TOKEN", "WECOM_AES_KEY")
    return [n for n in names if not str(getattr(settings, n, "") or "").strip()]


def status_context(request: HttpRequest) -> dict:
    """Everything the page shows (also what its tests read)."""
    event_counts = dict(WeComEvent.objects.values_list("status").annotate(n=Count("id")).values_list("status", "n"))
    last_event = WeComEvent.objects.order_by("-received_at", "-id").first()
    failed_events = list(WeComEvent.objects.filter(status=EventStatus.FAILED).order_by("-id")[:RECENT])
    taxonomy = dict(TaxonomyPush.objects.filter(status__in=[OutboxStatus.PENDING, OutboxStatus.FAILED])
                    .values_list("status").annotate(n=Count("id")).values_list("status", "n"))
    pull = latest_pull()
    running = pull is not None and pull.status in (JobStatus.PENDING, JobStatus.RUNNING)
    return {
        "configured": conf.is_configured(),
        "api_configured": conf.api_configured(),
        "callback_configured": conf.callback_configured(),
        "missing": _missing_settings(),
        "corp_id": conf.corp_id(),
        "api_base": conf.api_base(),
        "callback_url": request.build_absolute_uri(reverse("wecom:callback")),
        "last_event": last_event,
        "events_done": event_counts.get(EventStatus.DONE, 0) + event_counts.get(EventStatus.IGNORED, 0),
        "events_pending": event_counts.get(EventStatus.PENDING, 0),
        "events_failed": event_counts.get(EventStatus.FAILED, 0),
        "failed_events": failed_events,
        "outbox": outbox_backlog(),
        "failed_items": list(OutboxItem.objects.filter(status=OutboxStatus.FAILED)
                             .select_related("customer").order_by("-id")[:RECENT]),
        "last_sent": OutboxItem.objects.filter(status=OutboxStatus.DONE).order_by("-finished_at").first(),
        "taxonomy_pending": taxonomy.get(OutboxStatus.PENDING, 0),
        "taxonomy_failed": taxonomy.get(OutboxStatus.FAILED, 0),
        "failed_pushes": list(TaxonomyPush.objects.filter(status=OutboxStatus.FAILED).order_by("-id")[:RECENT]),
        "transfers_waiting": WeComTransferItem.objects.filter(errcode=0).exclude(
            status__in=FINAL_TRANSFER_STATUSES).count(),
        "pull": pull,
        "pull_running": running,
        "pull_progress": job_progress(pull) if pull else None,
        "pull_api_url": f"/api/v1/jobs/{pull.pk}/" if pull else "",
        "pull_url": reverse("admin:customers_job_change", args=[pull.pk]) if pull else "",
    }


@admin.register(OutboxCursor)
class WeComStatusAdmin(admin.ModelAdmin):
    """The admin menu's 企业微信连接: its list is the status page."""

    def has_module_permission(self, request):
        return may_view(request)

    def has_view_permission(self, request, obj=None):
        return may_view(request)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_urls(self):
        wrap = self.admin_site.admin_view
        info = self.model._meta.app_label, self.model._meta.model_name
        return [
            path("", wrap(self.status_view), name="wecom_status"),
            path("", wrap(self.status_view), name="{}_{}_changelist".format(*info)),
            path("pull/", wrap(self.pull_view), name="wecom_status_pull"),
            path("events/<int:event_id>/retry/", wrap(self.retry_event_view), name="wecom_status_retry_event"),
            path("outbox/retry/", wrap(self.retry_outbox_view), name="wecom_status_retry_outbox"),
        ]

    def _check(self, request):
        if not may_view(request):
            raise PermissionDenied

    def status_view(self, request):
        self._check(request)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": _("企业微信连接"),
            **status_context(request),
        }
        return TemplateResponse(request, "admin/wecom/status.html", context)

    def _back(self):
        return HttpResponseRedirect(reverse("admin:wecom_status"))

    @staticmethod
    def _actor(request) -> Actor:
        return Actor(employee=request.user)

    def pull_view(self, request):
        self._check(request)
        if request.method != "POST":
            return self._back()
        if not conf.api_configured():
            messages.error(request, _("尚未配置企业微信（WECOM_CORP_ID、WECOM_SECRET），不能同步。"))
            return self._back()
        pull = latest_pull()
        if pull is not None and pull.status in (JobStatus.PENDING, JobStatus.RUNNING):
            messages.warning(request, _("已有一次全量同步正在进行。"))
            return self._back()
        phases = {p: p in request.POST.getlist("phase") for p in ("org", "tags", "customers")}
        job = wecom_sync_start(actor=self._actor(request), **phases)
        messages.success(request, _("已开始全量同步（任务 #%(id)s）。") % {"id": job.pk})
        return self._back()

    def retry_event_view(self, request, event_id: int):
        self._check(request)
        if request.method == "POST":
            from .services import wecom_event_retry

            event = get_object_or_404(WeComEvent, pk=event_id)
            try:
                wecom_event_retry(event=event)
            except DomainError as exc:
                messages.error(request, str(exc))
            else:
                messages.success(request, _("事件 #%(id)s 已重新排队处理。") % {"id": event.pk})
        return self._back()

    def retry_outbox_view(self, request):
        self._check(request)
        if request.method == "POST":
            from .taxonomy import push_soon, taxonomy_retry_failed

            items = outbox_retry_failed()
            pushes = taxonomy_retry_failed()
            push_soon()
            messages.success(request, _("已重新发送 %(n)s 项失败的同步。") % {"n": items + pushes})
        return self._back()

    def changelist_view(self, request, extra_context=None):
        return self.status_view(request)

