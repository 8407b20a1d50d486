"""Admin for jobs (后台任务): the jobs list, each job's page with a live progress bar, cancel and undo;
and the customer list's bulk action "批量打标签" (ticked rows, or all N matching the filter).

Writes go through `customers.jobs` (`bulk_tagging_start`, `job_cancel`, `job_undo`); which jobs a
user sees is `jobs_visible`; which customers and tags, `customers_filtered` and `visible_tags`.
The progress bar polls `GET /api/v1/jobs/{id}/` (session auth) every 0.5 s.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.utils import unquote
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.dateparse import parse_datetime
from django.utils.html import format_html
from django.utils.timezone import localtime
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from org.actors import Actor
from tagportal.errors import DomainError
from tagportal.text import join_list, join_parts, seconds_text
from tags.models import Tag
from tags.selectors import visible_tag_groups, visible_tags

from .jobs import (
    DEMO_THREAD_NODE,
    FINISHED,
    bulk_tagging_start,
    job_actor_label,
    job_cancel,
    job_is_stale,
    job_is_undoable,
    job_progress,
    job_result_link,
    job_undo,
    jobs_requeue_stale,
    jobs_visible,
)
from .models import Job, JobKind, JobStatus, TagSource, TransferOutcome

FILTER_LABELS = {
    "tags_all": gettext_lazy("包含全部标签"),
    "tags_any": gettext_lazy("包含任一标签"),
    "tags_none": gettext_lazy("不含标签"),
    "follower": gettext_lazy("跟进成员"),
    "department": gettext_lazy("部门"),
    "state": gettext_lazy("渠道标识"),
    "external_userid": gettext_lazy("external_userid"),
    "q": gettext_lazy("搜索"),
    "updated_since": gettext_lazy("更新于之后"),
    "added_from": gettext_lazy("添加日期起"),
    "added_to": gettext_lazy("添加日期止"),
}
FAILED_SHOWN = 200
LOG_EVENTS = {
    "created": gettext_lazy("创建"),
    "started": gettext_lazy("开始执行"),
    "resumed": gettext_lazy("继续执行"),
    "requeued": gettext_lazy("重新排队"),
    "cancel_requested": gettext_lazy("请求取消"),
    "cancelled": gettext_lazy("已取消"),
    "succeeded": gettext_lazy("完成"),
    "failed": gettext_lazy("失败"),
    "crashed": gettext_lazy("出错"),
    "total_adjusted": gettext_lazy("总数校正"),
}
RESULT_LABELS = {
    JobKind.BULK_TAGGING: {"added": gettext_lazy("新增"), "removed": gettext_lazy("移除"),
                           "unchanged": gettext_lazy("无需修改")},
    JobKind.UNDO: {"removed": gettext_lazy("移除"), "restored": gettext_lazy("恢复"), "kept": gettext_lazy("保留")},
    JobKind.RULE_UNDO: {"removed": gettext_lazy("移除"), "kept": gettext_lazy("保留")},
    JobKind.RULE_BACKTEST: {"customers": gettext_lazy("命中客户"), "messages": gettext_lazy("命中消息"),
                            "excluded_messages": gettext_lazy("排除消息"),
                            "excluded_customers": gettext_lazy("排除客户"), "already": gettext_lazy("已有标签")},
    JobKind.TRANSFER: dict(TransferOutcome.choices),
}


def _actor(request) -> Actor:
    return Actor(employee=request.user)


def _tag_names(ids) -> dict[int, str]:
    return dict(Tag.objects.filter(pk__in=list(ids)).values_list("pk", "name"))


def describe_filter(params: dict) -> list[tuple[str, str]]:
    """A stored filter as (label, value) rows, tag ids shown by name."""
    ids = set()
    for key in ("tags_all", "tags_any", "tags_none"):
        ids.update(int(i) for i in str(params.get(key, "")).split(",") if i.strip().isdigit())
    names = _tag_names(ids)
    rows = []
    for key, value in params.items():
        label = FILTER_LABELS.get(key, key)
        if key in ("tags_all", "tags_any", "tags_none"):
            value = join_list(names.get(int(i), f"#{i}") for i in str(value).split(",") if i.strip().isdigit())
        rows.append((label, value))
    return rows


# ---------------------------------------------------------------- the bulk action on the customer list


class BulkTagForm(forms.Form):
    """The intermediate page's form: tags to add and to remove (visible tags only)."""

    add = forms.TypedMultipleChoiceField(coerce=int, required=False, label=gettext_lazy("添加标签"))
    remove = forms.TypedMultipleChoiceField(coerce=int, required=False, label=gettext_lazy("移除标签"))

    def __init__(self, *args, tag_ids=(), **kwargs):
        super().__init__(*args, **kwargs)
        choices = [(t, t) for t in tag_ids]
        self.fields["add"].choices = choices
        self.fields["remove"].choices = choices

    def clean(self):
        data = super().clean()
        if not data.get("add") and not data.get("remove"):
            raise forms.ValidationError(_("请至少选择一个要添加或移除的标签。"))
        both = set(data.get("add") or ()) & set(data.get("remove") or ())
        if both:
            raise forms.ValidationError(_("同一标签不能同时添加和移除。"))
        return data


def _tag_tree(employee, actor: Actor) -> list[dict]:
    """Visible groups in tree order with their tags; locked groups flagged for those who may not use them."""
    groups = list(visible_tag_groups(employee).order_by("tree_id", "lft"))
    by_group: dict[int, list] = {}
    for tag in visible_tags(employee).filter(group__in=[g.pk for g in groups]).order_by("order", "pk"):
        by_group.setdefault(tag.group_id, []).append(tag)
    locked_ids = {g.pk for g in groups if g.locked}
    parents = {g.pk: g.parent_id for g in groups}
    may_use_locked = actor.manages_taxonomy
    tree = []
    for group in groups:
        locked, node = False, group.pk
        while node is not None:
            locked = locked or node in locked_ids
            node = parents.get(node)
        tree.append({
            "group": group, "depth": group.level, "tags": by_group.get(group.pk, []),
            "locked": locked, "disabled": locked and not may_use_locked, "single_choice": group.single_choice,
            "colour": group.pk % 8,
        })
    return tree


def _bulk_choices(post):
    """The picker's choices as `add`/`remove` lists: one radio per tag (`op_<id>` = add | remove | "")
    — a tag is either added or removed, never both — plus plain `add`/`remove` lists (API-like posts)."""
    data = post.copy()
    for key, value in post.items():
        if key.startswith("op_") and key[3:].isdigit() and value in ("add", "remove"):
            data.appendlist(value, key[3:])
    return data


def _bulk_summary(count: int, add: list[str], remove: list[str]) -> str:
    """"将为 34 位客户添加：A、B；移除：C" shown right above the confirm button."""
    if not add and not remove:
        return ""
    parts = []
    if add:
        parts.append(_("添加：%(tags)s") % {"tags": "、".join(add)})
    if remove:
        parts.append(_("移除：%(tags)s") % {"tags": "、".join(remove)})
    return _("将为 %(n)s 位客户%(what)s") % {"n": f"{count:,}", "what": "；".join(parts)}


def _attach_errors(form, tree: list[dict], exc: DomainError) -> None:
    """The service's rule violations next to the picker: each on the group its tags belong to, naming
    the group and the tags; anything else as a form error."""
    errors = exc.details if isinstance(exc.details, list) else [{"message": exc.message}]
    group_of = {t.pk: node for node in tree for t in node["tags"]}
    for error in errors:
        nodes: dict[int, list] = {}
        for tag_id in error.get("tags") or ():
            node = group_of.get(tag_id)
            if node is not None:
                nodes.setdefault(node["group"].pk, [node, []])[1].append(tag_id)
        if not nodes:
            form.add_error(None, error.get("message", exc.message))
            continue
        for node, tag_ids in nodes.values():
            names = join_list(t.name for t in node["tags"] if t.pk in tag_ids)
            if error.get("code") == "single_choice":
                text = _("「%(group)s」是单选标签组，一次只能添加其中一个标签（已选：%(tags)s）。") % {
                    "group": node["group"].name, "tags": names}
            else:
                text = _("「%(group)s」：%(message)s（%(tags)s）。") % {
                    "group": node["group"].name, "message": error.get("message", exc.message), "tags": names}
            node.setdefault("errors", []).append(text)
            form.add_error(None, text)


@admin.action(description=gettext_lazy("批量添加 / 移除标签"), permissions=["change"])
def bulk_tag_action(modeladmin, request, queryset):
    """批量打标签 from the customer list. With "select all N" (Django's `select_across`) the job gets
    the page's filter (re-parsed from the query string), never a list of a million ids; with ticked
    rows it gets their ids. Shows N and a tag picker first; confirming starts the job and opens its page."""
    from .selectors import customers_filtered, parse_customer_filter

    actor = _actor(request)
    select_across = request.POST.get("select_across") == "1"
    filter_params = None
    customer_ids = None
    try:
        if select_across:
            flt = parse_customer_filter(request.GET)
            filter_params = flt.as_params()
            count = customers_filtered(employee=request.user, flt=flt).order_by().count()
        else:
            customer_ids = sorted(queryset.values_list("pk", flat=True))
            count = len(customer_ids)
    except DomainError as exc:
        modeladmin.message_user(request, exc.message, messages.ERROR)
        return None

    tree = _tag_tree(request.user, actor)
    usable = [t.pk for node in tree if not node["disabled"] for t in node["tags"]]
    data = _bulk_choices(request.POST) if "confirm" in request.POST else None
    form = BulkTagForm(data, tag_ids=usable)
    if data is not None and form.is_valid():
        add, remove = form.cleaned_data["add"], form.cleaned_data["remove"]
        try:
            job = bulk_tagging_start(actor=actor, add=add, remove=remove, source=TagSource.BULK,
                                     filter_params=filter_params, customer_ids=customer_ids)
        except DomainError as exc:
            _attach_errors(form, tree, exc)
        else:
            modeladmin.message_user(
                request, _("已开始批量打标签任务 #%(id)s（%(n)s 位客户）。") % {"id": job.pk, "n": count},
                messages.SUCCESS,
            )
            return HttpResponseRedirect(reverse("admin:customers_job_change", args=[job.pk]))

    chosen_add = {int(v) for v in (data.getlist("add") if data else ()) if v.isdigit()}
    chosen_remove = {int(v) for v in (data.getlist("remove") if data else ()) if v.isdigit()} - chosen_add
    names = {t.pk: t.name for node in tree for t in node["tags"]}
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": _("批量添加 / 移除标签"),
        "opts": modeladmin.model._meta,
        "count": count,
        "select_across": select_across,
        "filter_rows": describe_filter(filter_params or {}) if select_across else [],
        "selected": request.POST.getlist(ACTION_CHECKBOX_NAME),
        "tag_tree": tree,
        "chosen_add": chosen_add,
        "chosen_remove": chosen_remove,
        "summary": _bulk_summary(count, [names[t] for t in names if t in chosen_add],
                                 [names[t] for t in names if t in chosen_remove]),
        "form": form,
        "action_name": "bulk_tag_action",
        "action_checkbox_name": ACTION_CHECKBOX_NAME,
        "form_url": request.get_full_path(),
        "changelist_url": request.get_full_path(),
    }
    return TemplateResponse(request, "admin/customers/job/bulk_tag.html", context)


# ---------------------------------------------------------------- the jobs list and job page


def _when(at) -> str:
    """A time on the jobs list as the rest of the admin writes it (the customer list, the portrait):
    "2026-11-30 01:46" in Asia/Shanghai, not Django's "2026年11月30日 01:46"."""
    return localtime(at).strftime("%Y-%m-%d %H:%M") if at else "—"


def _log_row(entry: dict) -> dict:
    """A log entry for display: local time, the event in words."""
    at = parse_datetime(entry.get("at") or "")
    message = entry.get("message", "")
    if entry.get("event") in ("started", "resumed"):
        # The message is the worker that ran it: a Celery node's name, or one of our own placeholders.
        message = {"local": _("网页进程内执行（未配置 Celery）"),
                   DEMO_THREAD_NODE: _("网页进程的后台线程（演示模式）")}.get(message, message)
        message = _("执行者：%(worker)s") % {"worker": message} if message else ""
    return {
        "at": localtime(at).strftime("%Y-%m-%d %H:%M:%S") if at else "",
        "event": LOG_EVENTS.get(entry.get("event"), entry.get("event", "")),
        "message": message,
    }


class KindFilter(admin.SimpleListFilter):
    title = gettext_lazy("类型")
    parameter_name = "kind"

    def lookups(self, request, model_admin):
        return JobKind.choices

    def queryset(self, request, queryset):
        return queryset.filter(kind=self.value()) if self.value() else queryset


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    """任务: who ran what, when, how it ended; each job's page shows live progress, the summary,
    failed items, and cancel / undo."""

    list_display = ("job_cell", "status_cell", "actor_cell", "progress_cell", "result_cell", "created_cell",
                    "finished_cell", "duration_cell")
    list_display_links = ("job_cell",)
    list_filter = (KindFilter, "status")
    list_per_page = 50
    date_hierarchy = None
    show_full_result_count = False
    change_form_template = "admin/customers/job/job_page.html"

    def get_queryset(self, request):
        return jobs_visible(_actor(request))

    def changelist_view(self, request, extra_context=None):
        return super().changelist_view(request, {"title": _("任务"), **(extra_context or {})})

    # Everyone who logs in sees their own jobs; the queryset decides which.
    def has_module_permission(self, request):
        return bool(request.user.is_active)

    def has_view_permission(self, request, obj=None):
        return bool(request.user.is_active)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description=gettext_lazy("任务"))
    def job_cell(self, job: Job):
        return format_html("#{}\u00a0{}", job.pk, job.get_kind_display())  # "#5" never alone on a line

    @admin.display(description=gettext_lazy("状态"))
    def status_cell(self, job: Job):
        return format_html('<span class="tp-job-status tp-job-{}">{}</span>', job.status, job.get_status_display())

    @admin.display(description=gettext_lazy("执行者"))
    def actor_cell(self, job: Job):
        label = job_actor_label(job)
        return format_html('<span class="tp-job-actor" title="{}">{}</span>', label, label)

    @admin.display(description=gettext_lazy("进度"))
    def progress_cell(self, job: Job):
        text = f"{job.done:,} / {job.total:,}"
        if job.failed_items:
            return format_html('{} <span class="errornote-inline">{}</span>', text,
                               _("失败 %(n)s") % {"n": job.failed_items})
        return text

    @admin.display(description=gettext_lazy("结果"))
    def result_cell(self, job: Job):
        counts = job.counts or {}
        labels = RESULT_LABELS.get(job.kind, {})
        parts = [f"{labels.get(k, k)} {v:,}" for k, v in counts.items() if v]
        return join_parts(parts) or "—"

    @admin.display(description=gettext_lazy("创建时间"), ordering="created_at")
    def created_cell(self, job: Job):
        return _when(job.created_at)

    @admin.display(description=gettext_lazy("结束时间"), ordering="finished_at")
    def finished_cell(self, job: Job):
        return _when(job.finished_at)

    @admin.display(description=gettext_lazy("耗时"))
    def duration_cell(self, job: Job):
        if not job.started_at:
            return "—"
        return seconds_text(job_progress(job)["elapsed"])

    def get_urls(self):
        prefix = f"{self.opts.app_label}_{self.opts.model_name}"
        return [
            path("<path:object_id>/cancel/", self.admin_site.admin_view(self.cancel_view), name=f"{prefix}_cancel"),
            path("<path:object_id>/undo/", self.admin_site.admin_view(self.undo_view), name=f"{prefix}_undo"),
            *super().get_urls(),
        ]

    def _visible(self, request, object_id) -> Job:
        job = self.get_queryset(request).filter(pk=unquote(object_id)).first() if str(object_id).isdigit() else None
        if job is None:
            raise Http404(_("任务不存在。"))
        return job

    def change_view(self, request, object_id, form_url="", extra_context=None):
        job = self._visible(request, object_id)
        if job_is_stale(job):
            # Its worker died and nobody has picked it up yet (e.g. the embedded mode has no worker
            # to watch): re-queue it now; in eager mode it resumes inline, here.
            jobs_requeue_stale()
            job = self._visible(request, object_id)
        undo_jobs = list(job.undone_by.order_by("-pk"))
        active_undo = next((u for u in undo_jobs if u.status not in (JobStatus.FAILED, JobStatus.CANCELLED)), None)
        params = job.params or {}
        add_names = _tag_names(params.get("add") or [])
        remove_names = _tag_names(params.get("remove") or [])
        context = {
            **self.admin_site.each_context(request),
            "title": _("任务 #%(id)s：%(kind)s") % {"id": job.pk, "kind": job.get_kind_display()},
            "subtitle": None,
            "opts": self.opts,
            "job": job,
            "progress": job_progress(job),
            "finished": job.status in FINISHED,
            "actor_label": job_actor_label(job),
            "filter_rows": describe_filter(params["filter"]) if isinstance(params.get("filter"), dict) else [],
            "explicit_count": len(params["customers"]) if isinstance(params.get("customers"), list) else None,
            "add_names": [add_names.get(t, f"#{t}") for t in params.get("add") or []],
            "remove_names": [remove_names.get(t, f"#{t}") for t in params.get("remove") or []],
            "failed": (job.errors or [])[:FAILED_SHOWN],
            "failed_more": max(job.failed_items - FAILED_SHOWN, 0),
            "log": [_log_row(entry) for entry in reversed(job.log or [])],
            "undo_jobs": undo_jobs,
            "can_cancel": job.status in (JobStatus.PENDING, JobStatus.RUNNING) and not job.cancel_requested,
            "can_undo": job_is_undoable(job) and active_undo is None,
            "api_url": reverse("job-detail", args=[job.pk]),
            "customer_url": reverse("admin:customers_customer_changelist"),
            "poll_ms": 500,
            "result_link": job_result_link(job) if job.status in FINISHED else None,
            "result_counts": [(RESULT_LABELS.get(job.kind, {}).get(k, k), v) for k, v in (job.counts or {}).items()],
        }
        context.update(extra_context or {})
        request.current_app = self.admin_site.name
        return TemplateResponse(request, self.change_form_template, context)

    def cancel_view(self, request, object_id):
        job = self._visible(request, object_id)
        if request.method == "POST":
            try:
                job_cancel(actor=_actor(request), job=job)
                self.message_user(request, _("已请求取消：当前批次完成后停止，已完成的修改会保留（可撤销）。"),
                                  messages.WARNING)
            except DomainError as exc:
                self.message_user(request, exc.message, messages.ERROR)
        return HttpResponseRedirect(reverse("admin:customers_job_change", args=[job.pk]))

    def undo_view(self, request, object_id):
        job = self._visible(request, object_id)
        if request.method != "POST":
            return HttpResponseRedirect(reverse("admin:customers_job_change", args=[job.pk]))
        try:
            undo = job_undo(actor=_actor(request), job=job, source=TagSource.BULK)
        except DomainError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return HttpResponseRedirect(reverse("admin:customers_job_change", args=[job.pk]))
        self.message_user(request, _("已开始撤销任务 #%(id)s。") % {"id": undo.pk}, messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:customers_job_change", args=[undo.pk]))
