"""The org part of the portal: the department tree (drag to move), employees, API clients.

Every write goes through `org.services`; form validation asks the same services' checks so
a refused change is a form error, not a crash.

Extension points for later apps (org never imports them):

- `register_employee_panel(title, render)`: an extra section on the employee page;
  `render(request, employee)` returns safe HTML.
- `register_employee_tool(label, url_name, allowed=None)`: a button on the employee page, linking to
  `reverse(url_name, args=[employee.pk])`; shown only when `allowed(request, employee)` is true (if given).
- `register_employee_column(name, title, annotate)`: a column of the employee list;
  `annotate(queryset, viewer)` adds the value as the annotation `name` (one query for the whole page).
- `register_departed_note(render)`: the note on a departed employee's page; `render(request, employee)`
  returns safe HTML, or "" to leave it to the next (in the end, the note asking for a hand-over).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.actions import delete_selected as django_delete_selected
from django.contrib.admin.utils import unquote
from django.contrib.auth.models import Group
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db.models import Count
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from mptt.admin import DraggableMPTTAdmin
from mptt.forms import MPTTAdminForm, TreeNodeMultipleChoiceField

from tagportal.errors import DomainError
from tagportal.text import join_list

from . import services
from .actors import Actor
from .models import ApiClient, Department, Employee, EmployeeStatus, Role
from .selectors import department_paths, department_usage

# ---------------------------------------------------------------- extension points


@dataclass(frozen=True)
class EmployeePanel:
    title: str
    render: Callable[[HttpRequest, Employee], str]


@dataclass(frozen=True)
class EmployeeTool:
    label: str
    url_name: str
    allowed: Callable[[HttpRequest, Employee], bool] | None = None


@dataclass(frozen=True)
class EmployeeColumn:
    name: str
    title: str
    annotate: Callable


_employee_panels: list[EmployeePanel] = []
_employee_tools: list[EmployeeTool] = []
_employee_columns: list[EmployeeColumn] = []
_departed_notes: list[Callable[[HttpRequest, Employee], str]] = []


def register_employee_column(name: str, title: str, annotate: Callable) -> None:
    """Add a column to the employee list: `annotate(queryset, viewer)` returns the queryset with the
    annotation `name` (a subquery or count, so the list costs no query per row), as `viewer` may see it;
    the column shows its value (None: the viewer may not know it, shown as "-")."""
    if not any(c.name == name for c in _employee_columns):
        _employee_columns.append(EmployeeColumn(name, title, annotate))


def register_employee_panel(title: str, render: Callable[[HttpRequest, Employee], str]) -> None:
    """Add a section to the employee change page. `render(request, employee)` returns safe HTML."""
    if not any(p.title == title and p.render is render for p in _employee_panels):
        _employee_panels.append(EmployeePanel(title, render))


def register_employee_tool(
    label: str, url_name: str, allowed: Callable[[HttpRequest, Employee], bool] | None = None
) -> None:
    """Add a button to the employee change page, linking to `reverse(url_name, args=[employee.pk])`.
    With `allowed`, the button shows only to those for whom `allowed(request, employee)` is true."""
    if not any(t.url_name == url_name for t in _employee_tools):
        _employee_tools.append(EmployeeTool(label, url_name, allowed))


def register_departed_note(render: Callable[[HttpRequest, Employee], str]) -> None:
    """Say on a departed employee's page what became of their customers: `render(request, employee)`
    returns the whole note as safe HTML, or "" when it has nothing to say (the default note asks for a
    hand-over through 离职继承)."""
    if render not in _departed_notes:
        _departed_notes.append(render)


def _request_actor(request: HttpRequest) -> Actor:
    return Actor(employee=request.user)


# ---------------------------------------------------------------- departments


class DepartmentForm(MPTTAdminForm):
    class Meta:
        model = Department
        fields = ["name", "parent", "order", "external_id"]


@admin.register(Department)
class DepartmentAdmin(DraggableMPTTAdmin):
    """部门: the tree, drag a row's handle to reorder or move it under another department."""

    form = DepartmentForm
    list_display = ("tree_actions", "indented_title", "member_count", "external_id", "order")
    list_display_links = ("indented_title",)
    search_fields = ("name", "external_id")
    expand_tree_by_default = True
    mptt_level_indent = 24

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_members=Count("members", distinct=True))

    @admin.display(description=_("成员数"))
    def member_count(self, obj):
        return getattr(obj, "_members", None)

    def indented_title(self, item):
        return format_html(
            '<div style="text-indent:{}px" class="tp-dept" data-dept="{}">{}</div>',
            item._mpttfield("level") * self.mptt_level_indent,
            item.pk,
            item.name,
        )

    indented_title.short_description = _("名称")

    def changelist_view(self, request, extra_context=None):
        extra_context = {"can_move": self.has_change_permission(request), **(extra_context or {})}
        return super().changelist_view(request, extra_context=extra_context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        department = self.get_object(request, unquote(object_id))
        extra_context = dict(extra_context or {})
        if department is not None and department_usage(department):
            extra_context.setdefault("show_delete", False)  # still in use: the delete would be refused
        return super().change_view(request, object_id, form_url, extra_context)

    def save_model(self, request, obj, form, change):
        data = {k: form.cleaned_data.get(k) for k in ("name", "parent", "order", "external_id")}
        actor = _request_actor(request)
        if change:
            services.department_update(actor=actor, department=obj, **data)
        else:
            saved = services.department_create(actor=actor, **data)
            obj.pk, obj._state.adding = saved.pk, False

    def delete_model(self, request, obj):
        services.department_delete(actor=_request_actor(request), department=obj)

    def delete_queryset(self, request, queryset):
        for dep in queryset.order_by("-level"):
            services.department_delete(actor=_request_actor(request), department=dep)

    def get_deleted_objects(self, objs, request):
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        for dep in objs:
            usage = department_usage(dep)
            if usage:
                protected = list(protected) + [
                    gettext("%(dep)s：仍有%(what)s") % {"dep": dep.name, "what": join_list(usage)}
                ]
        return deleted, counts, perms_needed, protected

    def _move_node(self, request):
        """Drag and drop, through `department_move` (locked, cycle-checked, `order` renumbered)."""
        queryset = self.get_queryset(request)
        try:
            cut_item = queryset.get(pk=request.POST.get("cut_item"))
            pasted_on = queryset.get(pk=request.POST.get("pasted_on"))
        except (Department.DoesNotExist, TypeError, ValueError):
            self.message_user(request, gettext("部门已不存在，请刷新后重试。"), level=messages.ERROR)
            return HttpResponse("FAIL, invalid objects.")
        if not self.has_change_permission(request, cut_item):
            self.message_user(request, gettext("没有移动部门的权限。"), level=messages.ERROR)
            return HttpResponse("FAIL, no permission.")
        try:
            services.department_move(
                actor=_request_actor(request),
                department=cut_item,
                target=pasted_on,
                position=request.POST.get("position", ""),
            )
        except DomainError as exc:
            self.message_user(request, exc.message, level=messages.ERROR)
            return HttpResponse("FAIL, invalid move.")
        self.log_change(request, cut_item, [{"changed": {"fields": ["parent", "order"]}}])
        self.message_user(request, gettext("已移动部门“%(dep)s”。") % {"dep": cut_item.name})
        return HttpResponse("OK, moved.")


# ---------------------------------------------------------------- employees


class DepartmentTreeField(TreeNodeMultipleChoiceField):
    """Departments as indented checkboxes, so the five 销售部 read as 北京 / 上海 / …"""

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        kwargs.setdefault("level_indicator", "\u3000")
        super().__init__(
            queryset=Department.objects.all(),
            widget=forms.CheckboxSelectMultiple(attrs={"class": "tp-dept-tree"}),
            **kwargs,
        )


class EmployeeForm(forms.ModelForm):
    roles = forms.MultipleChoiceField(
        label=_("角色"),
        choices=Role.choices,
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text=_("只有企业管理员可以授予企业管理员和标签管理员。"),
    )
    departments = DepartmentTreeField(label=_("所属部门"))
    managed_departments = DepartmentTreeField(
        label=_("管理的部门"),
        help_text=_("销售经理可见这些部门成员的客户；只包含勾选的部门，不含下级部门。"),
    )
    new_password = forms.CharField(
        label=_("新密码"),
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text=_("留空则不修改。新成员不设密码则无法登录。"),
    )

    class Meta:
        model = Employee
        fields = ["userid", "name", "status", "roles", "departments", "managed_departments", "new_password"]

    def __init__(self, *args, actor: Actor | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.actor = actor
        if self.instance.pk:
            self.initial.setdefault("roles", sorted(self.instance.roles))
        else:
            self.initial.setdefault("roles", [Role.STAFF])

    def clean_new_password(self):
        password = self.cleaned_data.get("new_password")
        if password:
            validate_password(password, self.instance)
        return password

    def clean(self):
        cleaned = super().clean()
        if self.actor is None:
            return cleaned
        current = Employee.objects.filter(pk=self.instance.pk).first() if self.instance.pk else None
        try:
            if current is not None:
                changed = services.employee_changed_fields(
                    current,
                    **{f: cleaned[f] for f in ("userid", "name", "status", "roles") if f in cleaned},
                    **{f: cleaned.get(f) or [] for f in ("departments", "managed_departments")},
                    password=cleaned.get("new_password"),
                )
                services._check_may_edit(self.actor, current, changed)
            services.employee_check_roles(actor=self.actor, employee=current, roles=cleaned.get("roles") or [])
        except DomainError as exc:
            raise ValidationError(exc.message) from exc
        return cleaned


class DepartmentFilter(admin.SimpleListFilter):
    """By department (exact membership), labelled with the full path: five 销售部 stay apart."""

    title = _("所属部门")
    parameter_name = "department"

    def lookups(self, request, model_admin):
        return list(department_paths().items())

    def queryset(self, request, queryset):
        if self.value():
            try:
                return queryset.filter(departments=int(self.value()))
            except ValueError:
                return queryset.none()
        return queryset


class RoleFilter(admin.SimpleListFilter):
    title = _("角色")
    parameter_name = "role"

    def lookups(self, request, model_admin):
        return Role.choices

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(groups__name=self.value())
        return queryset


@admin.register(Employee)
class EmployeeAdmin(admin.ModelAdmin):
    """成员: employees with their roles, departments, managed departments and status."""

    form = EmployeeForm
    change_form_template = "admin/org/employee/change_form.html"
    list_display = ("userid", "name", "department_list", "role_list", "status_badge")
    list_filter = ("status", RoleFilter, DepartmentFilter)
    search_fields = ("userid", "name")
    list_per_page = 100
    actions = ["delete_selected"]  # ours: refuses with the service's message (see below)
    fieldsets = (
        (None, {"fields": ("userid", "name", "status", "new_password")}),
        (_("角色"), {"fields": ("roles",)}),
        (_("部门"), {"fields": ("departments", "managed_departments")}),
    )

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            return self.fieldsets
        history = (_("记录"), {"fields": ("date_joined", "last_login", "departed_at"), "classes": ("collapse",)})
        if not self.has_change_permission(request, obj):
            # Read-only (managers, staff): no password field, the roles by their names.
            return (
                (None, {"fields": ("userid", "name", "status")}),
                (_("角色"), {"fields": ("role_list",)}),
                *self.fieldsets[2:],
                history,
            )
        return (*self.fieldsets, history)

    def get_readonly_fields(self, request, obj=None):
        return ("date_joined", "last_login", "departed_at") if obj is not None else ()

    def get_queryset(self, request):
        qs = super().get_queryset(request).prefetch_related("departments__parent", "groups")
        for column in _employee_columns:
            qs = column.annotate(qs, request.user)
        return qs

    def get_list_display(self, request):
        columns = []
        for column in _employee_columns:
            def show(obj, name=column.name):
                return getattr(obj, name, None)

            show.__name__ = column.name  # the cell's CSS class: field-<name>
            columns.append(admin.display(description=column.title, ordering=column.name)(show))
        return (*self.list_display[:-1], *columns, self.list_display[-1])

    def get_form(self, request, obj=None, change=False, **kwargs):
        form_class = super().get_form(request, obj, change=change, **kwargs)
        actor = _request_actor(request)

        class ActorForm(form_class):
            def __init__(self, *args, **kw):
                kw.setdefault("actor", actor)
                super().__init__(*args, **kw)

        return ActorForm

    @admin.display(description=_("所属部门"))
    def department_list(self, obj):
        return join_list(f"{d.parent.name} {d.name}" if d.parent_id else d.name for d in obj.departments.all())

    @admin.display(description=_("角色"))
    def role_list(self, obj):
        labels = dict(Role.choices)
        return join_list(labels[g.name] for g in obj.groups.all() if g.name in labels)

    @admin.display(description=_("状态"), ordering="status")
    def status_badge(self, obj):
        color = "#999" if obj.status == EmployeeStatus.DEPARTED else "#2e7d32"
        return format_html('<span style="color:{}">{}</span>', color, obj.get_status_display())

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        fields = dict(
            userid=data["userid"],
            name=data["name"],
            status=data["status"],
            roles=data.get("roles") or [],
            departments=data.get("departments") or [],
            managed_departments=data.get("managed_departments") or [],
        )
        actor = _request_actor(request)
        if change:
            services.employee_update(actor=actor, employee=obj, password=data.get("new_password") or None, **fields)
        else:
            saved = services.employee_create(actor=actor, password=data.get("new_password") or None, **fields)
            obj.pk, obj._state.adding = saved.pk, False

    def save_related(self, request, form, formsets, change):
        # The service already set departments and roles; only inlines (none today) remain.
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)

    # -- delete: the service's refusal (customers or history, a privileged account) is shown as the
    # only message, instead of Django's "cannot delete" page or next to its success message.

    def delete_view(self, request, object_id, extra_context=None):
        employee = self.get_object(request, unquote(object_id))
        refused = (employee is not None and self.has_delete_permission(request, employee)
                   and not self._may_delete(request, [employee]))
        if refused:
            return HttpResponseRedirect(reverse("admin:org_employee_change", args=[employee.pk]))
        return super().delete_view(request, object_id, extra_context)

    @admin.action(permissions=["delete"], description=django_delete_selected.short_description)
    def delete_selected(self, request, queryset):
        if not self._may_delete(request, queryset):
            return None
        return django_delete_selected(self, request, queryset)

    def _may_delete(self, request, employees) -> bool:
        refusals = []
        for employee in employees:
            try:
                services.employee_check_delete(actor=_request_actor(request), employee=employee)
            except DomainError as exc:
                refusals.append(exc.message)
        for message in refusals:
            self.message_user(request, message, level=messages.ERROR)
        return not refusals

    @staticmethod
    def _may_delete_quietly(request, employee: Employee) -> bool:
        try:
            services.employee_check_delete(actor=_request_actor(request), employee=employee)
        except DomainError:
            return False
        return True

    def delete_model(self, request, obj):
        try:
            services.employee_delete(actor=_request_actor(request), employee=obj)
        except DomainError as exc:  # history written since the check
            request._tp_delete_refused = True
            self.message_user(request, exc.message, level=messages.ERROR)

    def delete_queryset(self, request, queryset):
        for employee in queryset:
            self.delete_model(request, employee)

    def message_user(self, request, message, level=messages.INFO, *args, **kwargs):
        if level == messages.SUCCESS and getattr(request, "_tp_delete_refused", False):
            return  # Django's "deleted" after a refused delete
        super().message_user(request, message, level, *args, **kwargs)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = dict(extra_context or {})
        employee = self.get_object(request, object_id)
        if employee is not None:
            # No delete button the service would refuse (customers or history, a privileged account).
            extra_context.setdefault("show_delete", self._may_delete_quietly(request, employee))
            extra_context["employee_departed"] = employee.is_departed
            extra_context["departed_note"] = self._departed_note(request, employee) if employee.is_departed else ""
            extra_context["employee_tools"] = self._tools(request, employee)
            extra_context["employee_panels"] = self._panels(request, employee)
        return super().change_view(request, object_id, form_url, extra_context)

    @staticmethod
    def _tools(request, employee: Employee) -> list[tuple[str, str]]:
        tools = []
        for tool in _employee_tools:
            if tool.allowed is not None and not tool.allowed(request, employee):
                continue
            try:
                tools.append((tool.label, reverse(tool.url_name, args=[employee.pk])))
            except NoReverseMatch:
                continue
        return tools

    @staticmethod
    def _departed_note(request, employee: Employee) -> SafeString | str:
        for render in _departed_notes:
            html = render(request, employee)
            if html:
                return SafeString(html)
        return ""

    @staticmethod
    def _panels(request, employee: Employee) -> list[tuple[str, SafeString]]:
        panels = []
        for panel in _employee_panels:
            html = panel.render(request, employee)
            if html:
                panels.append((panel.title, SafeString(html)))
        return panels


# ---------------------------------------------------------------- API clients


class ApiClientForm(forms.ModelForm):
    class Meta:
        model = ApiClient
        fields = ["name", "read_only"]


@admin.register(ApiClient)
class ApiClientAdmin(admin.ModelAdmin):
    """API 客户端: keys for CRMs and connectors. A new key is shown once, right after creation."""

    form = ApiClientForm
    list_display = ("name", "key_prefix_display", "scope_display", "created_at", "last_used_at", "state")
    list_filter = ("read_only",)
    search_fields = ("name", "key_prefix")
    actions = ["revoke"]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        return ("name", "read_only", "key_prefix_display", "created_at", "last_used_at", "revoked_at")

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("name", "read_only")
        return ("name", "read_only", "key_prefix_display", "created_at", "last_used_at", "revoked_at")

    @admin.display(description=_("密钥前缀"))
    def key_prefix_display(self, obj):
        return f"{obj.key_prefix}…"

    @admin.display(description=_("权限"))
    def scope_display(self, obj):
        return gettext("只读") if obj.read_only else gettext("读写")

    @admin.display(description=_("状态"))
    def state(self, obj):
        if obj.is_revoked:
            return format_html('<span style="color:#c62828">{}</span>', gettext("已吊销"))
        return format_html('<span style="color:#2e7d32">{}</span>', gettext("有效"))

    def save_model(self, request, obj, form, change):
        if change:
            return  # a client's name and scope are fixed; revoke it and create another
        saved, key = services.api_client_create(
            actor=_request_actor(request), name=form.cleaned_data["name"], read_only=form.cleaned_data["read_only"]
        )
        obj.pk, obj._state.adding = saved.pk, False
        obj.key_prefix = saved.key_prefix
        self.message_user(
            request,
            format_html(
                "{} <code id='tp-new-api-key' style='user-select:all;font-size:1.1em'>{}</code> {}",
                gettext("新密钥："),
                key,
                gettext("（只显示这一次，请立即复制保存。）"),
            ),
            level=messages.WARNING,
        )

    @admin.action(description=_("吊销所选 API 客户端"), permissions=["change"])
    def revoke(self, request, queryset):
        actor = _request_actor(request)
        count = 0
        for client in queryset.filter(revoked_at__isnull=True):
            services.api_client_revoke(actor=actor, client=client)
            count += 1
        self.message_user(request, gettext("已吊销 %(n)d 个 API 客户端。") % {"n": count})


# The five roles are fixed (DESIGN rule 5): their permissions are set by `org.roles` after every
# migration and a role is given on the employee's form. Django's own group pages would offer to
# edit permissions that the next migration puts back, in Django's raw permission names.
if admin.site.is_registered(Group):
    admin.site.unregister(Group)
