"""Admin 智能标签 (keyword rules), for tag admins and enterprise admins: the rule list (status, hits,
customers tagged), each rule's page (figures, hits per day, the hit log by outcome, 试一试, back-test
and undo), the editor (keyword chips, the tag tree picker, exclusions, status, sample customers),
and a back-test's result page (per keyword, highlighted samples, "tag them now").

Writes go through `rules.services`; reads through `rules.selectors`. Jobs open on the shared job
page with its live progress bar (`admin:customers_job_change`).
"""

from __future__ import annotations

import datetime as dt
import json

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.http import Http404, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from customers.admin_jobs import _tag_tree
from customers.models import Customer
from org.actors import Actor
from org.models import Department, Employee, EmployeeStatus, Role
from tagportal.errors import DomainError

from . import services
from .models import Backtest, HitOutcome, KeywordRule, RuleStatus
from .selectors import hits_per_day, reason_display, rule_figures, visible_rules

HITS_PER_PAGE = 50


def _actor(request) -> Actor:
    return Actor(employee=request.user)


def _manages(request) -> bool:
    user = request.user
    return bool(user.is_active and (user.is_superuser or user.has_role(Role.ENTERPRISE_ADMIN, Role.TAG_ADMIN)))


def _highlight(text: str, spans) -> str:
    """The text with `spans` wrapped in <mark> (escaped)."""
    out, last = [], 0
    for start, end in spans:
        out.append(format_html("{}<mark>{}</mark>", text[last:start], text[start:end]))
        last = end
    out.append(format_html("{}", text[last:]))
    return "".join(out)



DATE_FIELDS = {"since": gettext_lazy("开始日期"), "until": gettext_lazy("结束日期")}


def _error_text(exc: DomainError) -> str:
    """A service error for a message on the page: the date field by its Chinese name, not its key."""
    details = exc.details if isinstance(exc.details, dict) else {}
    texts = [f"{DATE_FIELDS[k]}{_('：')}{v}" for k, v in details.items() if k in DATE_FIELDS and isinstance(v, str)]
    return " ".join(texts) or exc.message

class RuleForm(forms.Form):
    """The editor. Keywords and sample customers travel as JSON lists in hidden inputs the chips fill."""

    name = forms.CharField(label=gettext_lazy("名称"), max_length=100)
    keywords = forms.CharField(widget=forms.HiddenInput, required=False)
    exclude_keywords = forms.CharField(widget=forms.HiddenInput, required=False)
    tags = forms.TypedMultipleChoiceField(coerce=int, required=False, widget=forms.CheckboxSelectMultiple)
    exclude_tags = forms.TypedMultipleChoiceField(coerce=int, required=False, widget=forms.CheckboxSelectMultiple)
    directions = forms.MultipleChoiceField(
        label=gettext_lazy("统计哪些消息"), choices=[("in", gettext_lazy("客户发出的消息")),
                                                    ("out", gettext_lazy("成员发出的消息"))],
        widget=forms.CheckboxSelectMultiple, initial=["in"], required=False)
    min_hits = forms.IntegerField(label=gettext_lazy("触发次数"), min_value=1, max_value=1000, initial=1)
    window_days = forms.IntegerField(label=gettext_lazy("统计天数（空 = 不限）"), min_value=1, max_value=3650,
                                     required=False)
    status = forms.ChoiceField(label=gettext_lazy("状态"), choices=RuleStatus.choices, initial=RuleStatus.DRAFT)
    sample_customers = forms.CharField(widget=forms.HiddenInput, required=False)
    employees = forms.ModelMultipleChoiceField(
        label=gettext_lazy("只针对这些成员的客户"), required=False, to_field_name="userid",
        queryset=Employee.objects.filter(status=EmployeeStatus.ACTIVE).order_by("userid"))
    departments = forms.ModelMultipleChoiceField(
        label=gettext_lazy("只针对这些部门成员的客户"), required=False, queryset=Department.objects.all())

    def __init__(self, *args, tag_ids=(), **kwargs):
        super().__init__(*args, **kwargs)
        choices = [(t, t) for t in tag_ids]
        self.fields["tags"].choices = choices
        self.fields["exclude_tags"].choices = choices

    @staticmethod
    def _json_list(value):
        try:
            data = json.loads(value or "[]")
        except ValueError:
            return None
        return data if isinstance(data, list) else None

    def payload(self) -> dict:
        """The service's input (its own validation names bad fields)."""
        d = self.cleaned_data
        return {
            "name": d["name"],
            "keywords": self._json_list(d.get("keywords")),
            "exclude_keywords": self._json_list(d.get("exclude_keywords")),
            "tags": list(d.get("tags") or []),
            "exclude_tags": list(d.get("exclude_tags") or []),
            "directions": list(d.get("directions") or []),
            "min_hits": d.get("min_hits"),
            "window_days": d.get("window_days"),
            "status": d.get("status"),
            "sample_customers": self._json_list(d.get("sample_customers")),
            "employees": [e.userid for e in d.get("employees") or []],
            "departments": [dep.pk for dep in d.get("departments") or []],
        }


@admin.register(KeywordRule)
class KeywordRuleAdmin(admin.ModelAdmin):
    """智能标签: see the module docstring."""

    def get_queryset(self, request):
        return visible_rules(_actor(request))

    def has_module_permission(self, request):
        return _manages(request)

    def has_view_permission(self, request, obj=None):
        return _manages(request)

    def has_add_permission(self, request):
        return _manages(request)

    def has_change_permission(self, request, obj=None):
        return _manages(request)

    def has_delete_permission(self, request, obj=None):
        return _manages(request)

    def delete_model(self, request, obj):
        services.keyword_rule_delete(actor=_actor(request), rule=obj)

    def get_urls(self):
        prefix = f"{self.opts.app_label}_{self.opts.model_name}"
        view = self.admin_site.admin_view
        return [
            path("<int:object_id>/edit/", view(self.edit_view), name=f"{prefix}_edit"),
            path("<int:object_id>/backtest/", view(self.backtest_view), name=f"{prefix}_backtest"),
            path("<int:object_id>/undo/", view(self.undo_view), name=f"{prefix}_undo"),
            path("backtest/<int:job_id>/", view(self.backtest_result_view), name=f"{prefix}_backtest_result"),
            path("backtest/<int:job_id>/apply/", view(self.backtest_apply_view), name=f"{prefix}_backtest_apply"),
            *super().get_urls(),
        ]

    def _rule(self, request, object_id) -> KeywordRule:
        if not _manages(request):
            raise Http404
        rule = self.get_queryset(request).filter(pk=unquote(str(object_id))).first() \
            if str(object_id).isdigit() else None
        if rule is None:
            raise Http404(_("智能标签不存在。"))
        return rule

    def _context(self, request, title: str, **extra) -> dict:
        return {**self.admin_site.each_context(request), "opts": self.opts, "title": title, **extra}

    # ------------------------------------------------------------ list

    def changelist_view(self, request, extra_context=None):
        if not _manages(request):
            raise Http404
        rules = list(self.get_queryset(request).prefetch_related("tags").order_by("-id"))
        rows = [{"rule": r, "tags": [t.name for t in r.tags.all()], "keywords": r.keywords[:8],
                 "more_keywords": max(len(r.keywords) - 8, 0)} for r in rules]
        context = self._context(request, _("智能标签"), rows=rows, add_url=reverse("admin:rules_keywordrule_add"))
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/rules/keywordrule/list.html", context)

    # ------------------------------------------------------------ the rule's page

    def change_view(self, request, object_id, form_url="", extra_context=None):
        rule = self._rule(request, object_id)
        outcome = request.GET.get("outcome") or ""
        if outcome not in HitOutcome.values:
            outcome = ""
        hits = rule.hits.select_related("message").order_by("-id")
        if outcome:
            hits = hits.filter(outcome=outcome)
        before = request.GET.get("before")
        if before and before.isdigit():
            hits = hits.filter(pk__lt=int(before))
        page = list(hits[: HITS_PER_PAGE + 1])
        more = len(page) > HITS_PER_PAGE
        page = page[:HITS_PER_PAGE]
        customer_names = dict(Customer.objects.filter(pk__in={h.customer_id for h in page}).values_list("pk", "name"))
        from .matcher import rule_matcher

        matcher = rule_matcher(rule)
        hit_rows = []
        for h in page:
            content = (h.message.content if h.message_id and h.message else "")[:300]
            hit_rows.append({
                "hit": h, "customer_name": customer_names.get(h.customer_id, f"#{h.customer_id}"),
                "content": _highlight(content, matcher.spans(content, [h.keyword])),
                "reason": reason_display(h.reason) if h.reason else "",
            })
        days = hits_per_day(rule)
        chart = {
            "kind": "stacked_bar",
            "categories": [d["date"][5:] for d in days],
            "series": [
                {"name": _("已打标签"), "data": [d["tagged"] for d in days]},
                {"name": _("测试（未打）"), "data": [d["shadow"] for d in days]},
                {"name": _("已排除"), "data": [d["excluded"] for d in days]},
                {"name": _("其他"), "data": [d["hits"] - d["tagged"] - d["shadow"] - d["excluded"] for d in days]},
            ],
        }
        figures = rule_figures(rule)
        backtests = list(Backtest.objects.filter(rule=rule).select_related("job").order_by("-id")[:5])
        context = self._context(
            request, rule.name, rule=rule, figures=figures, chart=chart, hit_rows=hit_rows, outcome=outcome,
            outcomes=HitOutcome.choices, more=more, next_before=page[-1].pk if more and page else None,
            tags=list(rule.tags.all()), exclude_tags=list(rule.exclude_tags.all()),
            samples=list(rule.sample_customers.all()), backtests=backtests,
            employees=list(rule.employees.all()), departments=list(rule.departments.all()),
            # the back-test's default range, as the service's: the last 30 days
            backtest_since=(timezone.localdate() - dt.timedelta(days=30)).isoformat(),
            backtest_until=timezone.localdate().isoformat(),
        )
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/rules/keywordrule/rule.html", context)

    # ------------------------------------------------------------ editor

    def add_view(self, request, form_url="", extra_context=None):
        if not _manages(request):
            raise Http404
        return self._editor(request, None)

    def edit_view(self, request, object_id):
        return self._editor(request, self._rule(request, object_id))

    def _editor(self, request, rule: KeywordRule | None):
        actor = _actor(request)
        tree = _tag_tree(request.user, actor)
        tag_ids = [t.pk for node in tree for t in node["tags"]]
        if request.method == "POST":
            form = RuleForm(request.POST, tag_ids=tag_ids)
            if form.is_valid():
                try:
                    if rule is None:
                        rule = services.keyword_rule_create(actor=actor, data=form.payload())
                    else:
                        rule = services.keyword_rule_update(actor=actor, rule=rule, data=form.payload())
                except DomainError as exc:
                    details = exc.details if isinstance(exc.details, dict) else {}
                    for field, message in details.items():
                        form.add_error(field if field in form.fields else None, str(message))
                    if not details:
                        form.add_error(None, exc.message)
                else:
                    self.message_user(request, _("已保存智能标签“%(name)s”。") % {"name": rule.name}, messages.SUCCESS)
                    return HttpResponseRedirect(reverse("admin:rules_keywordrule_change", args=[rule.pk]))
        elif rule is not None:
            form = RuleForm(tag_ids=tag_ids, initial={
                "name": rule.name, "keywords": json.dumps(rule.keywords, ensure_ascii=False),
                "exclude_keywords": json.dumps(rule.exclude_keywords, ensure_ascii=False),
                "tags": [t.pk for t in rule.tags.all()], "exclude_tags": [t.pk for t in rule.exclude_tags.all()],
                "directions": rule.directions or ["in"], "min_hits": rule.min_hits, "window_days": rule.window_days,
                "status": rule.status,
                "sample_customers": json.dumps([c.pk for c in rule.sample_customers.all()]),
                "employees": list(rule.employees.all()), "departments": list(rule.departments.all()),
            })
        else:
            form = RuleForm(tag_ids=tag_ids, initial={"keywords": "[]", "exclude_keywords": "[]",
                                                      "sample_customers": "[]"})

        def chosen(field):
            value = form.data.getlist(field) if form.is_bound else form.initial.get(field, [])
            return {int(v) for v in value if str(v).isdigit()}

        sample_ids = RuleForm._json_list(form["sample_customers"].value()) or []
        samples = list(Customer.objects.filter(pk__in=[i for i in sample_ids if isinstance(i, int)])
                       .values("pk", "name", "external_userid"))
        title = _("新建智能标签") if rule is None else _("编辑：%(name)s") % {"name": rule.name}
        context = self._context(
            request, title, form=form, rule=rule, tag_tree=tree, chosen_tags=chosen("tags"),
            chosen_exclude=chosen("exclude_tags"), samples_json=samples,  # json_script encodes it
            keywords_json=form["keywords"].value() or "[]",
            exclude_keywords_json=form["exclude_keywords"].value() or "[]",
            test_url=reverse("keyword-rule-test"), customers_url=reverse("customer-list"),
        )
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/rules/keywordrule/edit.html", context)

    # ------------------------------------------------------------ jobs

    def backtest_view(self, request, object_id):
        rule = self._rule(request, object_id)
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        try:
            job = services.rule_backtest_start(actor=_actor(request), rule=rule, since=request.POST.get("since"),
                                               until=request.POST.get("until"))
        except DomainError as exc:
            self.message_user(request, _error_text(exc), messages.ERROR)
            return HttpResponseRedirect(reverse("admin:rules_keywordrule_change", args=[rule.pk]))
        return HttpResponseRedirect(reverse("admin:customers_job_change", args=[job.pk]))

    def undo_view(self, request, object_id):
        rule = self._rule(request, object_id)
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        try:
            job = services.rule_undo_start(actor=_actor(request), rule=rule, since=request.POST.get("since"))
        except DomainError as exc:
            self.message_user(request, _error_text(exc), messages.ERROR)
            return HttpResponseRedirect(reverse("admin:rules_keywordrule_change", args=[rule.pk]))
        return HttpResponseRedirect(reverse("admin:customers_job_change", args=[job.pk]))

    def _backtest(self, request, job_id) -> Backtest:
        if not _manages(request):
            raise Http404
        backtest = Backtest.objects.select_related("job", "rule").filter(job_id=job_id).first()
        if backtest is None or not self.get_queryset(request).filter(pk=backtest.rule_id).exists():
            raise Http404(_("回测不存在。"))
        return backtest

    def backtest_result_view(self, request, job_id):
        from .jobs import BacktestJob

        backtest = self._backtest(request, job_id)
        result = BacktestJob().result(backtest.job) or {}
        names = dict(Customer.objects.filter(pk__in={s["customer"] for s in result.get("sample", [])})
                     .values_list("pk", "name"))
        samples = [{**s, "name": names.get(s["customer"], f"#{s['customer']}"),
                    "html": _highlight(s["content"], s.get("spans") or [])} for s in result.get("sample", [])]
        keywords = result.get("keywords", [])[:30]
        chart = {"kind": "hbar", "categories": [k["keyword"] for k in keywords],
                 "series": [{"name": _("命中消息"), "data": [k["messages"] for k in keywords]}]}
        context = self._context(
            request, _("回测结果：%(name)s") % {"name": backtest.rule.name}, backtest=backtest, result=result,
            samples=samples, chart=chart, tag_names=[t.name for t in backtest.rule.tags.all()],
            finished=backtest.job.status == "succeeded",
        )
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/rules/keywordrule/backtest.html", context)

    def backtest_apply_view(self, request, job_id):
        backtest = self._backtest(request, job_id)
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        try:
            job = services.rule_backtest_apply(actor=_actor(request), job=backtest.job)
        except DomainError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return HttpResponseRedirect(reverse("admin:rules_keywordrule_backtest_result", args=[job_id]))
        return HttpResponseRedirect(reverse("admin:customers_job_change", args=[job.pk]))
