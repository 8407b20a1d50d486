"""Admin for transfers (离职继承 / 在职继承): HR's hand-over tool and the transfer records.

From an employee's page HR clicks "离职继承" or "在职继承" → picks inheritors and whether to keep the
full portrait → preview (counts, merges, conflicts; customers can be assigned one by one there)
→ confirm (marks departed for 离职继承 and queues the job) → the transfer's page, with a live
progress bar while the job runs and then every customer's outcome. Everything goes through
`customers.transfers`; errors it raises come back as form errors.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Case, Count, IntegerField, OuterRef, Q, Subquery, Value, When
from django.db.models.functions import Coalesce
from django.http import Http404, HttpRequest, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from org.actors import Actor
from org.admin import (
    register_departed_note,
    register_employee_column,
    register_employee_panel,
    register_employee_tool,
)
from org.models import Employee, EmployeeStatus
from org.selectors import department_paths
from tagportal.errors import DomainError
from tagportal.text import aside, join_list, join_parts, join_sentences

from . import hooks, transfers
from .hooks import unassigned_counts
from .models import Customer, FollowRelation, JobStatus, RelationStatus, Transfer, TransferItem, TransferOutcome
from .selectors import _reach_employee_ids, sees_all_customers

MODES = {"departed": _("离职继承"), "onjob": _("在职继承")}
CUSTOMERS_LISTED = 1000
"""At most this many customers are listed for one-by-one assignment; the rest are shared evenly."""
ITEMS_PER_PAGE = 200
ASSIGNMENTS_PER_PAGE = 50


def _actor(request: HttpRequest) -> Actor:
    return Actor(employee=request.user)


class TransferStartForm(forms.Form):
    """Step 1: inheritors and options."""

    to_employees = forms.ModelMultipleChoiceField(
        label=_("继承人"),
        queryset=Employee.objects.none(),
        widget=forms.CheckboxSelectMultiple(attrs={"class": "tp-inheritor"}),
        help_text=_("可选多位，客户平均分配。只列出其他在职成员，可输入姓名、账号或部门筛选。"),
        error_messages={"required": _("请至少选择一位继承人。")},
    )
    keep_portrait = forms.BooleanField(
        label=_("保留完整画像"), required=False, initial=True,
        help_text=_("备注、描述、个人标签随客户转给继承人，跟进记录和聊天记录对继承人可见。"),
    )
    choose_customers = forms.BooleanField(
        label=_("逐个指定客户"), required=False, help_text=_("在预览页为每位客户选择继承人或不转接。")
    )

    def __init__(self, *args, from_employee: Employee, **kwargs):
        super().__init__(*args, **kwargs)
        self.from_employee = from_employee
        field = self.fields["to_employees"]
        field.queryset = Employee.objects.filter(
            status=EmployeeStatus.ACTIVE, is_active=True
        ).exclude(pk=from_employee.pk).prefetch_related("departments").order_by("userid")
        paths = department_paths()  # one query for every label
        field.label_from_instance = lambda employee: _inheritor_label(employee, paths)


def _inheritor_label(employee: Employee, paths: dict[int, str]) -> str:
    """"李四 (lisi) · 总部 / 华北区 / 北京分公司 / 销售部": the department's whole path tells the five
    销售部 apart, and the filter above the list matches any part of it."""
    departments = join_list(paths.get(d.pk, d.name) for d in employee.departments.all())
    return f"{employee} · {departments}" if departments else str(employee)


class CustomerChoiceForm(forms.Form):
    """Step 2 (optional): per listed customer, transfer it or not, and to whom."""

    def __init__(self, *args, customers: list, inheritors: list[Employee], **kwargs):
        super().__init__(*args, **kwargs)
        choices = [("", gettext("自动分配"))] + [(str(e.pk), str(e)) for e in inheritors]
        self.rows = []
        for customer in customers:
            pick = forms.BooleanField(required=False, initial=True, label=str(customer))
            to = forms.ChoiceField(required=False, choices=choices, label=gettext("继承人"))
            self.fields[f"pick_{customer.pk}"] = pick
            self.fields[f"to_{customer.pk}"] = to
            self.rows.append(customer)

    def bound_rows(self):
        for customer in self.rows:
            yield customer, self[f"pick_{customer.pk}"], self[f"to_{customer.pk}"]

    def selection(self, inheritors: list[Employee], all_ids: list[int]) -> tuple[list[int] | None, dict]:
        """(customer_ids or None for all, assignment) from the ticked rows."""
        by_pk = {e.pk: e for e in inheritors}
        listed = {c.pk for c in self.rows}
        picked, assignment = [], {}
        for customer in self.rows:
            if self.cleaned_data.get(f"pick_{customer.pk}"):
                picked.append(customer.pk)
                to = self.cleaned_data.get(f"to_{customer.pk}")
                if to:
                    assignment[customer.pk] = by_pk[int(to)]
        if len(picked) == len(listed):
            return None, assignment
        return picked + [c for c in all_ids if c not in listed], assignment


def _listed_customers(from_employee: Employee):
    return list(
        FollowRelation.objects.filter(employee=from_employee, status=RelationStatus.ACTIVE)
        .select_related("customer").order_by("customer_id")[:CUSTOMERS_LISTED]
    )


@admin.register(Transfer)
class TransferAdmin(admin.ModelAdmin):
    """客户继承记录: who handed whose customers to whom, when, with which option, and the outcome."""

    list_display = ("id", "from_employee", "inheritors", "created_at", "keep_portrait", "mark_departed",
                    "status_badge", "outcome_summary", "created_by")
    list_display_links = ("id", "from_employee")
    list_filter = ("keep_portrait", "mark_departed", "created_at")
    search_fields = ("from_employee__userid", "from_employee__name", "to_employees__userid", "to_employees__name")
    date_hierarchy = "created_at"
    list_per_page = 50

    # -- who may: HR and enterprise admins, through the same rule as the service

    def _allowed(self, request) -> bool:
        return request.user.is_active and transfers.transfer_allowed(_actor(request))

    def has_module_permission(self, request):
        return self._allowed(request)

    def has_view_permission(self, request, obj=None):
        return self._allowed(request)

    def has_add_permission(self, request):
        return False  # started from an employee's page

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False  # the record is the audit of a hand-over

    def get_queryset(self, request):
        per_outcome = {f"n_{value}": Count("items", filter=Q(items__outcome=value)) for value in TransferOutcome.values}
        return transfers.visible_transfers(_actor(request)).annotate(**per_outcome)

    # -- list columns

    @admin.display(description=_("继承人"))
    def inheritors(self, obj):
        return join_list(obj.to_employees.all())

    @admin.display(description=_("状态"))
    def status_badge(self, obj):
        status = obj.job.status if obj.job_id else ("succeeded" if obj.finished_at else "pending")
        colours = {"succeeded": "#2e7d32", "failed": "#c62828", "cancelled": "#777", "running": "#1565c0"}
        label = dict(JobStatus.choices).get(status, status)
        return format_html('<b style="color:{}">{}</b>', colours.get(status, "#555"), label)

    @admin.display(description=_("结果"))
    def outcome_summary(self, obj):
        counts = {value: getattr(obj, f"n_{value}", 0) for value in TransferOutcome.values}
        labels = dict(TransferOutcome.choices)
        return join_parts(f"{labels[k]} {counts[k]}" for k in TransferOutcome.values if counts.get(k)) or "—"

    @admin.display(description=_("操作人"))
    def created_by(self, obj):
        if obj.created_by_employee_id:
            return str(obj.created_by_employee)
        return f"API:{obj.created_by_client}" if obj.created_by_client_id else "—"

    # -- pages

    def get_urls(self):
        urls = [
            path("pending/", self.admin_site.admin_view(self.pending_view), name="customers_transfer_pending"),
            path("start/<id:employee_id>/<str:mode>/", self.admin_site.admin_view(self.start_view),
                 name="customers_transfer_start"),
            path("departed/<id:employee_id>/", self.admin_site.admin_view(self.departed_view),
                 name="customers_transfer_departed"),
            path("onjob/<id:employee_id>/", self.admin_site.admin_view(self.onjob_view),
                 name="customers_transfer_onjob"),
        ]
        return urls + super().get_urls()

    def pending_view(self, request):
        """待分配离职成员: departed employees who still have customers to hand over, how many (and how
        many WeCom lists as unassigned, when connected), each with 开始离职继承."""
        if not self._allowed(request):
            raise PermissionDenied
        show_all = request.GET.get("all") == "1"
        employees = list(transfers.departed_awaiting_transfer(_actor(request), include_done=show_all))
        wecom = unassigned_counts()
        if wecom:
            # WeCom may still list departed employees whose customers the portal already handed over.
            listed = {e.userid for e in employees}
            missing = [u for u, n in wecom.items() if n and u not in listed]
            if missing:
                employees += list(transfers.departed_awaiting_transfer(_actor(request), include_done=True)
                                  .filter(userid__in=missing))
        paths = department_paths()
        rows = []
        for employee in employees:
            rows.append({
                "employee": employee,
                "departments": [paths.get(d.pk, d.name) for d in employee.departments.all()],
                "waiting": employee.waiting,
                "wecom": (wecom or {}).get(employee.userid, 0) if wecom is not None else None,
                "start_url": reverse("admin:customers_transfer_start", args=[employee.pk, "departed"]),
                "running_url": (reverse("admin:customers_transfer_change", args=[employee.running_transfer_id])
                                if employee.running_transfer_id else ""),
                "last_url": (reverse("admin:customers_transfer_change", args=[employee.last_transfer_id])
                             if employee.last_transfer_id else ""),
            })
        page = Paginator(rows, 100).get_page(request.GET.get("page"))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": gettext("待分配离职成员"),
            "page": page,
            "show_all": show_all,
            "wecom_connected": wecom is not None,
            "total_waiting": sum(r["waiting"] for r in rows),
            "employees_url": reverse("admin:org_employee_changelist") + "?status__exact=active",
        }
        return TemplateResponse(request, "admin/customers/transfer/pending.html", context)

    def departed_view(self, request, employee_id):
        return HttpResponseRedirect(reverse("admin:customers_transfer_start", args=[employee_id, "departed"]))

    def onjob_view(self, request, employee_id):
        return HttpResponseRedirect(reverse("admin:customers_transfer_start", args=[employee_id, "onjob"]))

    def start_view(self, request, employee_id: int, mode: str):
        if mode not in MODES:
            raise Http404
        if not self._allowed(request):
            raise PermissionDenied
        from_employee = get_object_or_404(Employee, pk=employee_id)
        if mode == "onjob" and from_employee.is_departed:
            # 在职继承 is for someone who stays; a departed employee's customers go through 离职继承.
            messages.warning(request, gettext("%(name)s 已离职，请使用离职继承。") % {"name": from_employee})
            return HttpResponseRedirect(reverse("admin:customers_transfer_start", args=[employee_id, "departed"]))
        actor = _actor(request)
        active_customers = FollowRelation.objects.filter(employee=from_employee, status=RelationStatus.ACTIVE).count()
        step = request.POST.get("step", "") if request.method == "POST" else ""
        assign_page = 1
        if step.startswith("page:"):  # the preview's pager re-posts the form on another page of customers
            assign_page, step = step.removeprefix("page:"), "preview"
        form = TransferStartForm(request.POST or None, from_employee=from_employee)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"{MODES[mode]}：{from_employee}",
            "mode": mode,
            "mode_label": MODES[mode],
            "from_employee": from_employee,
            "form": form,
            "active_customers": active_customers,
            "already_departed": from_employee.is_departed,
            "past_transfers_url": (reverse("admin:customers_transfer_changelist")
                                   + f"?from_employee__exact={from_employee.pk}"),
        }
        if not active_customers and from_employee.is_departed:
            # Nothing to hand over and nobody to mark departed: say so, offer no form.
            return TemplateResponse(request, "admin/customers/transfer/start.html", context)
        if not step or not form.is_valid():
            return TemplateResponse(request, "admin/customers/transfer/start.html", context)

        inheritors = list(form.cleaned_data["to_employees"])
        keep = form.cleaned_data["keep_portrait"]
        customer_ids, assignment, choices = None, None, None
        if form.cleaned_data["choose_customers"]:
            listed = _listed_customers(from_employee)
            choices = CustomerChoiceForm(
                request.POST if step != "preview_first" else None,
                customers=[r.customer for r in listed], inheritors=inheritors,
            )
            if choices.is_bound and choices.is_valid():
                all_ids = list(FollowRelation.objects.filter(
                    employee=from_employee, status=RelationStatus.ACTIVE).values_list("customer_id", flat=True))
                customer_ids, assignment = choices.selection(inheritors, all_ids)
        arguments = {
            "actor": actor, "from_employee": from_employee, "to_employees": inheritors, "keep_portrait": keep,
            "customer_ids": customer_ids, "assignment": assignment, "mark_departed": mode == "departed",
        }
        if step == "confirm":
            try:
                transfer = transfers.transfer_start(**arguments)
            except DomainError as exc:
                for error in (exc.details if isinstance(exc.details, list) else [{"message": exc.message}]):
                    form.add_error(None, error.get("message", exc.message))
            else:
                messages.success(request, gettext("已开始%(mode)s：%(name)s 的 %(n)s 位客户。") % {
                    "mode": MODES[mode], "name": from_employee, "n": transfer.items.count()})
                return HttpResponseRedirect(reverse("admin:customers_transfer_change", args=[transfer.pk]))
        try:
            plan = transfers.transfer_preview(**arguments)
        except DomainError as exc:
            form.add_error(None, exc.message)
            return TemplateResponse(request, "admin/customers/transfer/start.html", context)
        if not plan.ok:
            for error in plan.errors:
                form.add_error(None, error["message"])
            return TemplateResponse(request, "admin/customers/transfer/start.html", context)
        context.update(plan=plan, choices=choices, listed_limit=CUSTOMERS_LISTED,
                       assignments=_assignment_page(plan, from_employee, assign_page),
                       title=gettext("%(mode)s预览：%(name)s") % {"mode": MODES[mode], "name": from_employee})
        return TemplateResponse(request, "admin/customers/transfer/preview.html", context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        """The transfer's page: live progress while its job runs, then every customer's outcome."""
        # A mistyped address (/customers/transfer/abc/, /customers/transfer/start/x/departed/) is a 404, not
        # a 500 from filtering an integer key by a string.
        transfer = self.get_queryset(request).filter(pk=object_id).first() if str(object_id).isdigit() else None
        if transfer is None or not self.has_view_permission(request, transfer):
            raise Http404
        items = TransferItem.objects.filter(transfer=transfer).select_related("customer", "to_employee").order_by("id")
        outcome = request.GET.get("outcome")
        if outcome in TransferOutcome.values:
            items = items.filter(outcome=outcome)
        page = Paginator(items, ITEMS_PER_PAGE).get_page(request.GET.get("page"))
        columns = hooks.transfer_columns(transfer, list(page))
        counts = dict(transfer.items.values_list("outcome").annotate(n=Count("id")).values_list("outcome", "n"))
        running = transfer.job_id is not None and transfer.job.status in (JobStatus.PENDING, JobStatus.RUNNING)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": gettext("客户继承 #%(id)s") % {"id": transfer.pk},
            "transfer": transfer,
            "inheritors": list(transfer.to_employees.all()),
            "page": page,
            "rows": [(item, item_detail_text(item.detail), [values.get(item.pk, "") for _title, values in columns])
                     for item in page],
            "extra_columns": [title for title, _values in columns],
            "outcome": outcome,
            "outcomes": [(value, label, counts.get(value, 0)) for value, label in TransferOutcome.choices],
            "total": sum(counts.values()),
            "running": running,
            "status": transfer.job.status if transfer.job_id else ("succeeded" if transfer.finished_at else "pending"),
            "status_label": dict(JobStatus.choices).get(transfer.job.status) if transfer.job_id else "",
            "job_url": _job_url(transfer),
            "progress_url": f"/api/v1/jobs/{transfer.job_id}/" if transfer.job_id else "",
        }
        return TemplateResponse(request, "admin/customers/transfer/detail.html", context)


def _assignment_page(plan, from_employee: Employee, number) -> dict:
    """One page of the preview's "which customer goes to whom": every customer of the plan, in
    customer order, with the departed's remark, the inheritor and whether the two will merge."""
    paginator = Paginator(sorted(plan.assignment), ASSIGNMENTS_PER_PAGE)
    page = paginator.get_page(number)
    ids = list(page.object_list)
    customers = Customer.objects.in_bulk(ids)
    remarks = dict(FollowRelation.objects.filter(employee=from_employee, customer_id__in=ids)
                   .values_list("customer_id", "remark"))
    inheritors = {i.employee.pk: i.employee for i in plan.inheritors}
    merged = set(FollowRelation.objects.filter(
        customer_id__in=ids, status=RelationStatus.ACTIVE, employee_id__in=list(inheritors),
    ).values_list("customer_id", "employee_id"))
    rows = [{"customer": customers.get(cid), "remark": remarks.get(cid, ""), "to": inheritors[plan.assignment[cid]],
             "merged": (cid, plan.assignment[cid]) in merged} for cid in ids]
    return {"page": page, "rows": rows,
            "page_numbers": list(paginator.get_elided_page_range(page.number, on_each_side=2, on_ends=1))}


def _job_url(transfer: Transfer) -> str:
    if transfer.job_id is None:
        return ""
    try:
        return reverse("admin:customers_job_change", args=[transfer.job_id])
    except NoReverseMatch:
        return ""


def item_detail_text(detail: dict) -> str:
    parts = []
    if detail.get("reason"):
        parts.append(str(detail["reason"]))
    if detail.get("personal_tags"):
        parts.append(gettext("个人标签 +%(n)s") % {"n": detail["personal_tags"]})
    if detail.get("notes"):
        parts.append(gettext("跟进记录 %(n)s 条可见") % {"n": detail["notes"]})
    if detail.get("portrait") == "carried_over":
        parts.append(gettext("补转画像"))
    if detail.get("reactivated"):
        parts.append(gettext("恢复原跟进关系"))
    return join_sentences(parts)


def _transfers_panel(request: HttpRequest, employee: Employee) -> str:
    """On the employee page: the transfers from and to this employee (HR and admins only)."""
    actor = _actor(request)
    if not transfers.transfer_allowed(actor):
        return ""
    rows = transfers.visible_transfers(actor).filter(from_employee=employee)[:10]
    incoming = transfers.visible_transfers(actor).filter(to_employees=employee)[:10]
    if not rows and not incoming:
        return ""

    def line(t: Transfer, text: str):
        # In Asia/Shanghai (the portal's time zone), not the UTC the database keeps.
        return (reverse("admin:customers_transfer_change", args=[t.pk]), t.pk, text,
                aside(timezone.localtime(t.created_at).strftime("%Y-%m-%d %H:%M")))

    items = [line(t, gettext("转出给 %(to)s") % {"to": join_list(t.to_employees.all())})
             for t in rows]
    items += [line(t, gettext("从 %(from)s 继承") % {"from": t.from_employee}) for t in incoming]
    return format_html("<ul>{}</ul>", format_html_join("", '<li><a href="{}">#{}</a> {}{}</li>', items))


def _departed_note(request: HttpRequest, employee: Employee) -> str:
    """On a departed employee's page once they follow nobody: their customers were handed over (naming
    the transfer that did it, for those who may see it), or there were none; never a request to hand
    them over again. "" while customers are left: the page then asks for 离职继承."""
    if FollowRelation.objects.filter(employee=employee, status=RelationStatus.ACTIVE).exists():
        return ""
    last = Transfer.objects.filter(from_employee=employee).order_by("-created_at", "-pk").first()
    if last is None:
        return gettext("该成员已离职：不能登录，也不能通过 API 操作。他没有需要交接的客户。")
    if not transfers.transfer_allowed(_actor(request)):
        return gettext("该成员已离职：不能登录，也不能通过 API 操作。他跟进的客户已交给其他成员。")
    link = format_html('<a href="{}">{}</a>', reverse("admin:customers_transfer_change", args=[last.pk]),
                       gettext("客户继承 #%(id)s") % {"id": last.pk})
    text = gettext("该成员已离职：不能登录，也不能通过 API 操作。他跟进的客户已通过 {transfer} 交给其他成员。")
    return format_html(text, transfer=link)


def _may_transfer(request: HttpRequest, employee: Employee) -> bool:
    """The 离职继承/在职继承 buttons: only for those who may transfer (HR, enterprise admins)."""
    return request.user.is_active and transfers.transfer_allowed(_actor(request))


def _may_transfer_on_job(request: HttpRequest, employee: Employee) -> bool:
    """在职继承 only for someone still employed; a departed employee gets 离职继承 alone."""
    return not employee.is_departed and _may_transfer(request, employee)


register_employee_tool(_("离职继承"), "admin:customers_transfer_departed", allowed=_may_transfer)
register_employee_tool(_("在职继承"), "admin:customers_transfer_onjob", allowed=_may_transfer_on_job)
register_employee_panel(_("客户继承记录"), _transfers_panel)
register_departed_note(_departed_note)


def _with_customer_count(qs, viewer):
    """Each employee's customers, for those whose customers the viewer sees (HR and admins: everyone; a
    manager: the members of the departments they manage; staff: themself); "-" for the others."""
    active = FollowRelation.objects.filter(employee=OuterRef("pk"), status=RelationStatus.ACTIVE)
    count = Coalesce(Subquery(active.order_by().values("employee").annotate(n=Count("pk")).values("n")), 0)
    if sees_all_customers(viewer):
        return qs.annotate(tp_customers=count)
    return qs.annotate(tp_customers=Case(When(pk__in=_reach_employee_ids(viewer), then=count),
                                         default=Value(None), output_field=IntegerField()))


register_employee_column("tp_customers", _("客户数"), _with_customer_count)
