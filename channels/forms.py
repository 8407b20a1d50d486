"""The channel code's admin form: the fields of API.md, the tag tree picker of the portrait (every
group the author sees, locked ones usable: a code is automation), the employees the author may put on
a code, working hours per weekday. It validates the shape only; `channels.services` decides."""

from __future__ import annotations

import re

from django import forms
from django.utils.translation import gettext_lazy as _

from customers.forms import CustomerTagsForm, build_tag_tree
from org.actors import Actor
from org.models import Department, Employee, EmployeeStatus
from tags.selectors import visible_tag_groups, visible_tags

from .models import NAME_MAX_LENGTH, STATE_MAX_LENGTH, ChannelCode, Rotation
from .selectors import managed_department_ids, manages_all_codes, reachable_employee_ids
from .services import HM_RE

WEEKDAYS = [_("周一"), _("周二"), _("周三"), _("周四"), _("周五"), _("周六"), _("周日")]
SPAN_RE = re.compile(r"^\s*(\d{1,2}:\d{2})\s*[-–~至]\s*(\d{1,2}:\d{2})\s*$")


class EmployeeChoiceField(forms.ModelMultipleChoiceField):
    widget = forms.CheckboxSelectMultiple

    def label_from_instance(self, obj: Employee) -> str:
        return f"{obj.name} ({obj.userid})" if obj.name else obj.userid


def _spans(text: str) -> list[list[str]]:
    """"09:00-12:00, 13:30-18:00" → [["09:00", "12:00"], ["13:30", "18:00"]] (the service checks them)."""
    spans = []
    for part in re.split(r"[,，;；\s]+(?=\d)", text.strip()):
        if not part.strip():
            continue
        match = SPAN_RE.match(part)
        if not match:
            raise forms.ValidationError(_("时间段写成 09:00-18:00，多个用逗号分隔。"))
        start, end = (value.zfill(5) for value in match.groups())
        if not (HM_RE.match(start) and HM_RE.match(end)) or start >= end:
            raise forms.ValidationError(
                _("“%(span)s”不是有效的时间段：时间在 00:00–24:00 之间，且开始早于结束。") % {"span": part.strip()})
        spans.append([start, end])
    return spans


class ChannelCodeForm(forms.Form):
    """新建 / 编辑渠道活码."""

    name = forms.CharField(label=_("名称"), max_length=NAME_MAX_LENGTH)
    state = forms.CharField(
        label=_("渠道标识"), max_length=STATE_MAX_LENGTH, required=False,
        help_text=_("企业微信“联系我”的 state：1–30 位字母、数字、_ 或 -；留空自动生成。有客户通过后不能再修改。"),
    )
    employees = EmployeeChoiceField(label=_("接待成员"), queryset=Employee.objects.none())
    backup_employees = EmployeeChoiceField(label=_("备用成员"), queryset=Employee.objects.none(), required=False)
    daily_limit = forms.IntegerField(label=_("每人每日上限"), min_value=1, max_value=100_000, required=False,
                                     help_text=_("按北京时间的自然日计；留空表示不限。"))
    rotation = forms.ChoiceField(label=_("分配方式"), choices=Rotation.choices, initial=Rotation.ROUND_ROBIN)
    department = forms.ModelChoiceField(label=_("所属部门"), queryset=Department.objects.none(), required=False)
    remark_template = forms.CharField(
        label=_("客户备注模板"), max_length=64, required=False,
        help_text=_("可用 {channel}（渠道名）、{name}（客户昵称）、{employee}（接待成员）。"),
    )
    welcome_message = forms.CharField(label=_("欢迎语"), required=False, max_length=4000,
                                      widget=forms.Textarea(attrs={"rows": 3}))
    description = forms.CharField(label=_("说明"), required=False, max_length=4000,
                                  widget=forms.Textarea(attrs={"rows": 2}))
    skip_verify = forms.BooleanField(label=_("客户添加时无需成员确认"), required=False, initial=True)
    enabled = forms.BooleanField(label=_("启用"), required=False, initial=True)

    def __init__(self, *args, actor: Actor, code: ChannelCode | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.actor, self.code = actor, code
        active = Employee.objects.filter(status=EmployeeStatus.ACTIVE, is_active=True).order_by("userid")
        if not manages_all_codes(actor):
            active = active.filter(pk__in=reachable_employee_ids(actor.employee))
        if code is not None:  # departed receivers stay listed (ticked) so the page shows them
            active = Employee.objects.filter(pk__in=list(active.values_list("pk", flat=True)) + list(
                code.employees.values_list("pk", flat=True))).order_by("userid")
        self.fields["employees"].queryset = active
        self.fields["backup_employees"].queryset = active
        departments = Department.objects.order_by("tree_id", "lft")
        if not manages_all_codes(actor):
            departments = departments.filter(pk__in=managed_department_ids(actor.employee))
            self.fields["department"].required = True
        self.fields["department"].queryset = departments
        self.hours_fields = []
        for day, label in enumerate(WEEKDAYS):
            name = f"hours_{day}"
            self.fields[name] = forms.CharField(label=label, required=False, max_length=100,
                                                widget=forms.TextInput(attrs={"placeholder": "09:00-18:00"}))
            self.hours_fields.append(name)
        if code is not None:
            self.initial.update({
                "name": code.name, "state": code.state, "employees": list(code.employees.all()),
                "backup_employees": list(code.backup_employees.all()), "daily_limit": code.daily_limit,
                "rotation": code.rotation, "department": code.department, "remark_template": code.remark_template,
                "welcome_message": code.welcome_message, "description": code.description,
                "skip_verify": code.skip_verify, "enabled": code.enabled,
            })
            for day, spans in (code.working_hours or {}).items():
                self.initial[f"hours_{day}"] = ", ".join(f"{a}-{b}" for a, b in spans)
        elif len(departments) == 1:
            self.initial["department"] = departments[0]
        employee = actor.employee
        nodes = build_tag_tree(visible_tag_groups(employee).order_by("tree_id", "lft"),
                               visible_tags(employee).select_related("group"), can_edit_locked=True)
        current = set(code.tags.values_list("pk", flat=True)) if code is not None else set()
        self.tags_form = CustomerTagsForm(
            self.data if self.is_bound else None, nodes=nodes, current_tag_ids=current, personal_tags=[],
            current_personal_ids=set(), can_personal=False, prefix="tags",
        )

    @property
    def hours_rows(self):
        return [self[name] for name in self.hours_fields]

    def is_valid(self) -> bool:
        own = super().is_valid()
        return self.tags_form.is_valid() and own

    def clean(self):
        data = super().clean()
        hours = {}
        any_hours = False
        for day, name in enumerate(self.hours_fields):
            text = (data.get(name) or "").strip()
            if not text:
                continue
            any_hours = True
            try:
                hours[str(day)] = _spans(text)
            except forms.ValidationError as exc:
                self.add_error(name, exc)
        data["working_hours"] = hours if any_hours else {}
        return data

    def service_data(self) -> dict:
        """The cleaned form as the service's (API-shaped) data."""
        d = self.cleaned_data
        data = {
            "name": d["name"], "employees": [e.userid for e in d["employees"]],
            "backup_employees": [e.userid for e in d.get("backup_employees") or []],
            "daily_limit": d.get("daily_limit"), "rotation": d["rotation"],
            "working_hours": d["working_hours"], "tags": sorted(self.tags_form.cleaned_data["tag_ids"]),
            "remark_template": d.get("remark_template") or "", "welcome_message": d.get("welcome_message") or "",
            "description": d.get("description") or "", "skip_verify": bool(d.get("skip_verify")),
            "enabled": bool(d.get("enabled")),
            "department": d["department"].pk if d.get("department") else None,
        }
        if d.get("state"):
            data["state"] = d["state"]
        elif self.code is not None:
            data["state"] = self.code.state
        return data

    def add_service_errors(self, exc) -> bool:
        """Put a service error (`DomainError`) on the fields it names; False when none matched a field."""
        matched = False
        if isinstance(exc.details, dict):
            for key, value in exc.details.items():
                message = value.get("message") if isinstance(value, dict) else exc.message
                if key == "tags":
                    self.tags_form.add_error(None, message)
                    matched = True
                elif key == "working_hours":
                    self.add_error(None, message)
                    matched = True
                elif key in self.fields:
                    self.add_error(key, message)
                    matched = True
        return matched
