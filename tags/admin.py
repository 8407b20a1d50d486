"""The taxonomy in the portal: one tree of tag groups (drag to move or reorder) with their tags,
scopes picked on the department tree, health warnings, import/export, merge, personal tags.

Every write goes through `tags.services`; every read of groups goes through
`TagGroup.objects.restrict(actor)` / `visible_tag_groups`. Tag admins and enterprise admins
manage every group; managers and staff see only the groups visible to them, read-only, with
locked groups' tags greyed.
"""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Count, Prefetch
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _
from mptt.admin import DraggableMPTTAdmin
from mptt.forms import TreeNodeChoiceField, TreeNodeMultipleChoiceField

from org.actors import Actor
from org.admin import register_employee_panel
from org.models import Department, Employee
from tagportal.errors import DomainError
from tagportal.text import join_list

from . import services
from .hooks import tagging_counts
from .models import MAX_GROUP_DEPTH, PersonalTag, Tag, TagGroup
from .selectors import can_apply_locked, tag_group_usage, tag_groups_for_display, taxonomy_health
from .taxonomy_io import taxonomy_export, taxonomy_import


def _actor(request: HttpRequest) -> Actor:
    return Actor(employee=request.user)


def _department_label(dept: Department) -> str:
    """售后部 exists under every branch: show it with its parent (北京分公司/售后部)."""
    return f"{dept.parent.name}/{dept.name}" if dept.parent_id else dept.name


def _apply_domain_error(form: forms.Form, exc: DomainError, fields=("name", "parent", "departments")) -> None:
    details = exc.details if isinstance(exc.details, dict) else {}
    field = next((f for f in fields if f in details and f in form.fields), None)
    form.add_error(field, exc.message)


# ---------------------------------------------------------------- scope picker


class TaxonomyWriteMixin:
    """The taxonomy's admin pages: only tag admins and enterprise admins (`manages_taxonomy`) may
    add, change or delete, whatever Django permissions the user holds; everyone else reads."""

    def has_add_permission(self, request):
        return super().has_add_permission(request) and _actor(request).manages_taxonomy

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and _actor(request).manages_taxonomy

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and _actor(request).manages_taxonomy


class ScopeTreeWidget(forms.CheckboxSelectMultiple):
    """Departments as an indented checkbox tree; each box carries its level and parent for the
    "also add sub-departments" script."""

    def create_option(self, name, value, label, selected, index, subindex=None, attrs=None):
        option = super().create_option(name, value, label, selected, index, subindex, attrs)
        dept = getattr(value, "instance", None)
        if dept is not None:
            option["attrs"].update({"data-level": dept.level, "data-parent": dept.parent_id or ""})
            option["label"] = dept.name  # indented by CSS from data-level
        return option


class ScopeField(TreeNodeMultipleChoiceField):
    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        super().__init__(queryset=Department.objects.all(), widget=ScopeTreeWidget(attrs={"class": "tp-scope-tree"}),
                         **kwargs)


class TagGroupForm(forms.ModelForm):
    """A group's name, place, scope and flags. Checks are the services' (`tag_group_check`)."""

    parent = TreeNodeChoiceField(
        queryset=TagGroup.objects.filter(level__lt=MAX_GROUP_DEPTH - 1), required=False, label=_("上级标签组"),
        help_text=_("留空为顶层。标签组最多 3 级。"),
    )
    departments = ScopeField(
        label=_("可见范围"),
        help_text=_("不勾选表示全员可见。只有勾选部门的成员可见，下级部门不会自动继承。"),
    )
    include_sub_departments = forms.BooleanField(
        label=_("同时加入下级部门"), required=False,
        help_text=_("勾选后，所选部门的全部下级部门也会被明确加入可见范围（保存时生效）。"),
    )

    class Meta:
        model = TagGroup
        fields = ["name", "parent", "order", "departments", "include_sub_departments", "locked", "single_choice"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "name" in self.fields:  # absent when shown read-only
            self.fields["name"].max_length = None  # the service reports length after trimming
            self.fields["name"].widget.attrs.pop("maxlength", None)
        if "order" in self.fields:
            self.fields["order"].required = False
            if not self.instance.pk:  # a new group goes last among its siblings unless told otherwise
                self.fields["order"].initial = None
                self.fields["order"].help_text = _("留空则排在同级最后。")
        if self.instance.pk and "parent" in self.fields:
            subtree = self.instance.get_descendants(include_self=True).values("pk")
            self.fields["parent"].queryset = self.fields["parent"].queryset.exclude(pk__in=subtree)

    def clean(self):
        cleaned = super().clean()
        if "name" not in cleaned:
            return cleaned
        try:
            cleaned["name"] = services.tag_group_check(
                group=self.instance if self.instance.pk else None, name=cleaned["name"],
                parent=cleaned.get("parent"), departments=cleaned.get("departments"),
            )
        except DomainError as exc:
            _apply_domain_error(self, exc)
        if self.instance.pk and "single_choice" in self.fields:
            try:  # rule 7: not while customers hold two of its tags
                services.tag_group_single_choice_check(group=self.instance, single_choice=cleaned.get("single_choice"))
            except DomainError as exc:
                self.add_error("single_choice", exc.message)
        return cleaned


# ---------------------------------------------------------------- tags inside a group


class TagInlineForm(forms.ModelForm):
    move_to = TreeNodeChoiceField(
        queryset=TagGroup.objects.all(), required=False, label=_("移到其他组"),
        help_text=_("标签移动后，带有它的客户保持不变。"),
    )

    class Meta:
        model = Tag
        fields = ["name", "order"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "name" in self.fields:
            self.fields["name"].max_length = None
            self.fields["name"].widget.attrs.pop("maxlength", None)
            # Not stripped here: a row of only spaces is a change, and the service reports it as blank.
            self.fields["name"].strip = False
        if "order" in self.fields:
            self.fields["order"].required = False

    def clean_name(self):
        try:
            return services.clean_name(self.cleaned_data.get("name"))
        except DomainError as exc:
            raise ValidationError(exc.message)

    def clean(self):
        cleaned = super().clean()
        target, name = cleaned.get("move_to"), cleaned.get("name")
        if target and name and not cleaned.get("DELETE"):
            clash = services.name_clash(Tag.objects.filter(group=target).exclude(pk=self.instance.pk), name)
            if clash is not None:
                self.add_error("move_to", gettext("“%(group)s”中已有同名标签“%(name)s”。") % {
                    "group": target.name, "name": clash})
        return cleaned

    def validate_unique(self):
        pass  # sibling names are checked case-insensitively by the formset and the services


class TagInlineFormSet(forms.BaseInlineFormSet):
    def add_fields(self, form, index):
        super().add_fields(form, index)
        if "move_to" in form.fields and self.instance.pk:  # "move to another group": not this one
            form.fields["move_to"].queryset = form.fields["move_to"].queryset.exclude(pk=self.instance.pk)

    def clean(self):
        super().clean()
        seen = {}
        for form in self.forms:
            if not hasattr(form, "cleaned_data") or form.cleaned_data.get("DELETE") or not form.cleaned_data:
                continue
            if form.cleaned_data.get("move_to"):
                continue
            name = form.cleaned_data.get("name")
            key = services.name_key(name) if name else None
            if key and key in seen:
                form.add_error("name", gettext("同组已有同名标签“%(name)s”（%(rule)s）。") % {
                    "name": seen[key].cleaned_data["name"], "rule": services.NAME_RULE})
            elif key:
                seen[key] = form


class TagInline(admin.TabularInline):
    """The group's tags, in order. Edit `order` to reorder; "move to" carries a tag and its customers."""

    model = Tag
    form = TagInlineForm
    formset = TagInlineFormSet
    fields = ("name", "order", "customer_count", "move_to")
    readonly_fields = ("customer_count",)
    extra = 1
    ordering = ("order", "id")
    verbose_name = pgettext_lazy("模型", "标签")
    verbose_name_plural = _("本组的标签（按排序值从小到大）")

    def get_queryset(self, request):
        return super().get_queryset(request).order_by("order", "id")

    def get_fields(self, request, obj=None):
        if not self.has_change_permission(request, obj):
            return ("name", "order", "customer_count")
        return self.fields

    @admin.display(description=_("客户数"))
    def customer_count(self, obj):
        if not obj.pk:
            return "-"
        return tagging_counts([obj.pk]).get(obj.pk, 0)


# ---------------------------------------------------------------- the tree


def _scoped_group_spans() -> list[tuple[int, int, int]]:
    """(tree_id, lft, rght) of every group with a scope: a sub-group inside one of them with no
    scope of its own is visible only where that ancestor is."""
    return list(TagGroup.objects.filter(departments__isnull=False).distinct()
                .values_list("tree_id", "lft", "rght"))


@admin.register(TagGroup)
class TagGroupAdmin(TaxonomyWriteMixin, DraggableMPTTAdmin):
    """标签组: the taxonomy as one tree. Drag a row's handle to move or reorder a group."""

    form = TagGroupForm
    inlines = [TagInline]
    list_display = ("tree_actions", "indented_title", "tag_chips", "scope", "flags")
    list_display_links = ("indented_title",)
    expand_tree_by_default = True
    mptt_level_indent = 24
    search_fields = ("name", "tags__name")
    change_list_template = "admin/tags/taggroup/change_list.html"
    change_form_template = "admin/tags/taggroup/change_form.html"
    delete_confirmation_template = "admin/tags/taggroup/delete_confirmation.html"

    # -- reads

    def get_queryset(self, request):
        return (
            TagGroup.objects.restrict(_actor(request), "view")
            .prefetch_related(
                Prefetch("tags", queryset=Tag.objects.order_by("order", "id")),
                Prefetch("departments", queryset=Department.objects.select_related("parent")),
            )
        )

    def get_search_results(self, request, queryset, search_term):
        queryset, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        return queryset.distinct(), False

    def indented_title(self, item):
        return format_html(
            '<div style="padding-left:{}px" class="tp-group" data-group="{}">{}</div>',
            item.level * self.mptt_level_indent, item.pk, item.name,
        )

    indented_title.short_description = _("标签组")

    @admin.display(description=_("标签"))
    def tag_chips(self, item):
        greyed = item.locked and not can_apply_locked(getattr(self, "_viewer", None))
        css = "tp-tag tp-tag-locked" if greyed else ("tp-tag tp-tag-admin-locked" if item.locked else "tp-tag")
        title = gettext("锁定：只能查看，不能打或移除") if greyed else ""
        chips = format_html_join(
            "", '<span class="{}" data-tag="{}" title="{}">{}</span>',
            ((css, t.pk, title, t.name) for t in item.tags.all()),
        )
        return chips or format_html('<span class="tp-empty">{}</span>', gettext("（无标签）"))

    @admin.display(description=_("可见范围"))
    def scope(self, item):
        depts = list(item.departments.all())
        if not depts:
            scoped = getattr(self, "_scoped_groups", None)
            if scoped is None:
                scoped = self._scoped_groups = _scoped_group_spans()
            if any(t == item.tree_id and lft < item.lft and item.rght < rght for t, lft, rght in scoped):
                return gettext("随上级（全员，受上级范围限制）")
            return gettext("全员")
        return join_list(_department_label(d) for d in depts)

    @admin.display(description=_("属性"))
    def flags(self, item):
        parts = []
        if item.locked:
            parts.append(format_html('<span class="tp-flag tp-flag-locked">{}</span>', gettext("锁定")))
        if item.single_choice:
            parts.append(format_html('<span class="tp-flag">{}</span>', gettext("单选")))
        return format_html_join(" ", "{}", ((p,) for p in parts))

    def changelist_view(self, request, extra_context=None):
        self._viewer = request.user
        self._scoped_groups = _scoped_group_spans()
        extra_context = dict(extra_context or {})
        actor = _actor(request)
        extra_context["manages_taxonomy"] = actor.manages_taxonomy and self.has_change_permission(request)
        if extra_context["manages_taxonomy"] and request.method == "GET":
            report = taxonomy_health(similar=False)  # the cheap checks; the health page runs them all
            extra_context["health_warnings"] = len(report.crowded_departments) + len(report.near_duplicates) + (
                1 if report.everyone_top_level > 20 else 0)
        return super().changelist_view(request, extra_context)

    def get_fields(self, request, obj=None):
        fields = list(super().get_fields(request, obj))
        if not self.has_change_permission(request, obj) and "include_sub_departments" in fields:
            fields.remove("include_sub_departments")
        return fields

    def get_readonly_fields(self, request, obj=None):
        if not self.has_change_permission(request, obj):
            return ("name", "parent", "order", "departments", "locked", "single_choice")
        return ()

    # -- writes, all through the services

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        actor = _actor(request)
        kwargs = dict(name=data["name"], departments=list(data.get("departments") or []),
                      include_sub_departments=data.get("include_sub_departments", False),
                      locked=data.get("locked", False), single_choice=data.get("single_choice", False))
        order = data.get("order")
        if change:
            saved = services.tag_group_update(actor=actor, group=obj, parent=data.get("parent"), order=order, **kwargs)
        else:
            saved = services.tag_group_create(actor=actor, parent=data.get("parent"), order=order, **kwargs)
        obj.pk, obj._state.adding = saved.pk, False
        obj.refresh_from_db()

    def save_related(self, request, form, formsets, change):
        # The service set the scope; tags go through their services one by one.
        for formset in formsets:
            self._save_tags(request, form.instance, formset)

    def _save_tags(self, request, group, formset):
        actor = _actor(request)
        # What formset.save() would record, for the admin's change message.
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
        for f in formset.forms:
            if not f.has_changed() and not (f.instance.pk and f.cleaned_data.get("DELETE")):
                continue
            data = f.cleaned_data
            if not data:
                continue
            try:
                if f.instance.pk and data.get("DELETE"):
                    services.tag_delete(actor=actor, tag=f.instance)
                    formset.deleted_objects.append(f.instance)
                elif f.instance.pk:
                    tag = services.tag_update(actor=actor, tag=f.instance, name=data["name"],
                                              order=data.get("order"), group=data.get("move_to") or None)
                    formset.changed_objects.append((tag, f.changed_data))
                elif data.get("name"):
                    tag = services.tag_create(actor=actor, group=group, name=data["name"], order=data.get("order"))
                    if data.get("move_to"):
                        tag = services.tag_move(actor=actor, tag=tag, group=data["move_to"])
                    formset.new_objects.append(tag)
            except DomainError as exc:
                self.message_user(request, exc.message, level=messages.ERROR)

    def get_actions(self, request):
        # Django's own delete_selected (confirmation via get_deleted_objects, then delete_queryset, i.e.
        # the service), not mptt's, which calls obj.delete() directly.
        return admin.ModelAdmin.get_actions(self, request)

    def delete_model(self, request, obj):
        removed = services.tag_group_delete(actor=_actor(request), group=obj)
        if removed:
            self.message_user(request, gettext("已从 %(n)d 条客户标签记录中移除。") % {"n": removed}, messages.WARNING)

    def delete_queryset(self, request, queryset):
        ids = list(queryset.values_list("pk", flat=True))
        for pk in ids:
            group = TagGroup.objects.filter(pk=pk).first()
            if group is not None:  # an ancestor's delete may already have taken it
                self.delete_model(request, group)

    def get_deleted_objects(self, objs, request):
        """Our own summary (groups, tags, and how many customers carry them), not Django's collector:
        the services delete sub-groups and tags with the group, so nothing is "protected"."""
        lines, counts = [], {}
        total_groups = total_tags = total_taggings = 0
        for group in objs:
            usage = tag_group_usage(group)
            total_groups += usage["groups"]
            total_tags += usage["tags"]
            total_taggings += usage["taggings"]
            lines.append(gettext("标签组“%(name)s”：含 %(g)d 个组、%(t)d 个标签，%(c)d 条客户标签记录") % {
                "name": group.name, "g": usage["groups"], "t": usage["tags"], "c": usage["taggings"]})
        counts[gettext("标签组")] = total_groups
        counts[gettext("标签")] = total_tags
        counts[gettext("客户标签记录")] = total_taggings
        request._tp_taggings = total_taggings
        perms_needed = set() if self.has_delete_permission(request) else {gettext("标签组")}
        return lines, counts, perms_needed, []

    def delete_view(self, request, object_id, extra_context=None):
        extra_context = dict(extra_context or {})
        group = self.get_object(request, object_id)
        if group is not None:
            extra_context["usage"] = tag_group_usage(group)
        return super().delete_view(request, object_id, extra_context)

    def _move_node(self, request):
        queryset = self.get_queryset(request)
        try:
            cut_item = queryset.get(pk=request.POST.get("cut_item"))
            pasted_on = queryset.get(pk=request.POST.get("pasted_on"))
        except (TagGroup.DoesNotExist, TypeError, ValueError):
            self.message_user(request, gettext("标签组已不存在，请刷新后重试。"), level=messages.ERROR)
            return HttpResponse("FAIL, invalid objects.")
        if not self.has_change_permission(request, cut_item):
            self.message_user(request, gettext("没有移动标签组的权限。"), level=messages.ERROR)
            return HttpResponse("FAIL, no permission.")
        try:
            services.tag_group_place(actor=_actor(request), group=cut_item, target=pasted_on,
                                     position=request.POST.get("position", ""))
        except DomainError as exc:
            self.message_user(request, exc.message, level=messages.ERROR)
            return HttpResponse("FAIL, invalid move.")
        self.log_change(request, cut_item, [{"changed": {"fields": ["parent", "order"]}}])
        self.message_user(request, gettext("已移动标签组“%(name)s”。") % {"name": cut_item.name})
        return HttpResponse("OK, moved.")

    # -- extra pages: health, export, import

    def get_urls(self):
        info = f"{self.opts.app_label}_{self.opts.model_name}"
        extra = [
            path("health/", self.admin_site.admin_view(self.health_view), name=f"{info}_health"),
            path("export/", self.admin_site.admin_view(self.export_view), name=f"{info}_export"),
            path("import/", self.admin_site.admin_view(self.import_view), name=f"{info}_import"),
        ]
        return extra + super().get_urls()

    def _require_manager(self, request):
        if not (self.has_change_permission(request) and _actor(request).manages_taxonomy):
            raise PermissionDenied

    def health_view(self, request):
        self._require_manager(request)
        report = taxonomy_health()
        context = dict(self.admin_site.each_context(request), opts=self.opts, title=gettext("标签体系体检"),
                       report=report, limit=20,
                       crowded=[(_department_label(d), n) for d, n in report.crowded_departments])
        return TemplateResponse(request, "admin/tags/taggroup/health.html", context)

    def export_view(self, request):
        self._require_manager(request)
        body = json.dumps(taxonomy_export(), ensure_ascii=False, indent=2)
        response = HttpResponse(body, content_type="application/json; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="taxonomy.json"'
        return response

    def import_view(self, request):
        self._require_manager(request)
        form = TaxonomyImportForm(request.POST or None, request.FILES or None)
        problems = []
        if request.method == "POST" and form.is_valid():
            try:
                result = taxonomy_import(actor=_actor(request), data=form.cleaned_data["data"])
            except DomainError as exc:
                form.add_error(None, exc.message)
                problems = exc.details if isinstance(exc.details, list) else []
            else:
                r = result.as_dict()
                self.message_user(request, gettext(
                    "导入完成：新建 %(groups_created)d 个标签组、更新 %(groups_updated)d 个，"
                    "新建 %(tags_created)d 个标签，%(tags_unchanged)d 个标签已存在。") % r)
                return HttpResponseRedirect(reverse("admin:tags_taggroup_changelist"))
        context = dict(self.admin_site.each_context(request), opts=self.opts, title=gettext("导入标签体系"),
                       form=form, problems=problems[:50], more=max(0, len(problems) - 50))
        return TemplateResponse(request, "admin/tags/taggroup/import.html", context)


class TaxonomyImportForm(forms.Form):
    file = forms.FileField(label=_("JSON 文件"), required=False,
                           help_text=_("本系统导出的文件，或企业微信 get_corp_tag_list 接口的返回结果。"))
    text = forms.CharField(label=_("或粘贴 JSON"), required=False, widget=forms.Textarea(attrs={"rows": 8}))

    def clean(self):
        cleaned = super().clean()
        raw = None
        if cleaned.get("file"):
            raw = cleaned["file"].read()
            if len(raw) > 5 * 1024 * 1024:
                raise ValidationError(gettext("文件太大（最多 5 MB）。"))
        elif cleaned.get("text"):
            raw = cleaned["text"]
        if not raw:
            raise ValidationError(gettext("请选择文件或粘贴 JSON。"))
        try:
            cleaned["data"] = json.loads(raw)
        except ValueError as exc:
            raise ValidationError(gettext("不是有效的 JSON：%(e)s") % {"e": exc})
        return cleaned


# ---------------------------------------------------------------- tags (flat list, merge)


class TagForm(forms.ModelForm):
    group = TreeNodeChoiceField(queryset=TagGroup.objects.all(), label=_("标签组"))

    class Meta:
        model = Tag
        fields = ["group", "name", "order"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "name" in self.fields:  # absent when shown read-only (staff, managers)
            self.fields["name"].max_length = None
            self.fields["name"].widget.attrs.pop("maxlength", None)
        if "order" in self.fields:
            self.fields["order"].required = False

    def validate_unique(self):
        pass

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("name") is None or not cleaned.get("group"):
            return cleaned
        try:
            cleaned["name"] = services.clean_name(cleaned["name"])
        except DomainError as exc:
            self.add_error("name", exc.message)
            return cleaned
        siblings = Tag.objects.filter(group=cleaned["group"]).exclude(pk=self.instance.pk)
        clash = services.name_clash(siblings, cleaned["name"])
        if clash is not None:
            self.add_error("name", gettext("该组已有标签“%(name)s”，视为同名（%(rule)s）。") % {
                "name": clash, "rule": services.NAME_RULE})
        if self.instance.pk:
            try:  # rule 7: moving into a single-choice group must not give customers two of its tags
                services.tag_move_check(tag=Tag.objects.get(pk=self.instance.pk), group=cleaned["group"])
            except DomainError as exc:
                self.add_error("group", exc.message)
        return cleaned


class TagMergeForm(forms.Form):
    target = forms.ModelChoiceField(queryset=Tag.objects.select_related("group"), label=_("合并到"))


@admin.register(Tag)
class TagAdmin(TaxonomyWriteMixin, admin.ModelAdmin):
    """企业标签: every tag with its group; move a tag to another group, merge tags."""

    form = TagForm
    list_display = ("name", "group_path", "order", "customer_count")
    list_filter = (("group", admin.RelatedOnlyFieldListFilter),)
    search_fields = ("name", "group__name")
    actions = ["merge_tags"]
    list_per_page = 200
    delete_confirmation_template = "admin/tags/tag/delete_confirmation.html"

    def get_queryset(self, request):
        return Tag.objects.restrict(_actor(request), "view").select_related("group__parent__parent")

    def get_list_display(self, request):
        # Company-wide customer counts are for those who manage the taxonomy.
        if _actor(request).manages_taxonomy:
            return self.list_display
        return ("name", "group_path", "order", "locked_display")

    @admin.display(description=_("可否使用"))
    def locked_display(self, obj):
        if obj.group.locked and not can_apply_locked(getattr(self, "_viewer", None)):
            return format_html('<span class="tp-tag tp-tag-locked">{}</span>', gettext("锁定，仅可查看"))
        return ""

    def changelist_view(self, request, extra_context=None):
        self._viewer = request.user
        return super().changelist_view(request, extra_context)

    @admin.display(description=_("标签组"), ordering="group__tree_id")
    def group_path(self, obj):
        names, node = [], obj.group
        while node is not None:
            names.append(node.name)
            node = node.parent
        return " / ".join(reversed(names))

    @admin.display(description=_("客户数"))
    def customer_count(self, obj):
        cache = getattr(self, "_count_cache", None)
        if cache is None or obj.pk not in cache:
            return tagging_counts([obj.pk]).get(obj.pk, 0)
        return cache.get(obj.pk, 0)

    def get_changelist_instance(self, request):
        cl = super().get_changelist_instance(request)
        self._count_cache = tagging_counts([t.pk for t in cl.result_list])
        return cl

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        actor = _actor(request)
        if change:
            saved = services.tag_update(actor=actor, tag=Tag.objects.get(pk=obj.pk), name=data["name"],
                                        order=data.get("order"), group=data["group"])
        else:
            saved = services.tag_create(actor=actor, group=data["group"], name=data["name"], order=data.get("order"))
        obj.pk, obj._state.adding = saved.pk, False

    def delete_model(self, request, obj):
        removed = services.tag_delete(actor=_actor(request), tag=obj)
        if removed:
            self.message_user(request, gettext("已从 %(n)d 位客户身上移除该标签。") % {"n": removed}, messages.WARNING)

    def delete_queryset(self, request, queryset):
        for tag in list(queryset):
            self.delete_model(request, tag)

    def get_deleted_objects(self, objs, request):
        counts = tagging_counts([t.pk for t in objs])
        template = gettext("标签“%(name)s”：%(n)d 位客户带有它，删除后将被移除")
        lines = [template % {"name": t.name, "n": counts.get(t.pk, 0)} for t in objs]
        summary = {gettext("标签"): len(objs), gettext("客户标签记录"): sum(counts.values())}
        request._tp_taggings = sum(counts.values())
        perms_needed = set() if self.has_delete_permission(request) else {gettext("标签")}
        return lines, summary, perms_needed, []

    def delete_view(self, request, object_id, extra_context=None):
        extra_context = dict(extra_context or {})
        tag = self.get_object(request, object_id)
        if tag is not None:
            extra_context["customer_count"] = tagging_counts([tag.pk]).get(tag.pk, 0)
        return super().delete_view(request, object_id, extra_context)

    @admin.action(description=_("合并所选标签到另一个标签…"), permissions=["change"])
    def merge_tags(self, request, queryset):
        sources = list(queryset)
        form = TagMergeForm(request.POST if "apply" in request.POST else None)
        form.fields["target"].queryset = Tag.objects.restrict(_actor(request)).select_related("group")
        form.fields["target"].label_from_instance = lambda t: f"{t.group.name} / {t.name}"
        if "apply" in request.POST and form.is_valid():
            target = form.cleaned_data["target"]
            moved = 0
            try:
                with transaction.atomic():  # all the merges or none
                    for source in sources:
                        if source.pk != target.pk:
                            moved += services.tag_merge(actor=_actor(request), source=source, target=target)
            except DomainError as exc:
                self.message_user(request, exc.message, level=messages.ERROR)
                return None
            self.message_user(request, gettext("已合并到“%(t)s”，%(n)d 条客户标签记录已转移（不会重复）。") % {
                "t": target.name, "n": moved})
            return None
        counts = tagging_counts([t.pk for t in sources])
        context = dict(
            self.admin_site.each_context(request), opts=self.opts, title=gettext("合并标签"), form=form,
            sources=[(t, counts.get(t.pk, 0)) for t in sources], queryset=queryset,
            action_checkbox_name=helpers.ACTION_CHECKBOX_NAME,
        )
        return TemplateResponse(request, "admin/tags/tag/merge.html", context)


# ---------------------------------------------------------------- personal tags


class PersonalTagForm(forms.ModelForm):
    class Meta:
        model = PersonalTag
        fields = ["name"]

    def __init__(self, *args, **kwargs):
        self.owner = kwargs.pop("owner", None)
        super().__init__(*args, **kwargs)
        self.fields["name"].max_length = None
        self.fields["name"].widget.attrs.pop("maxlength", None)

    def validate_unique(self):
        pass

    def clean_name(self):
        try:
            name = services.clean_name(self.cleaned_data.get("name"))
        except DomainError as exc:
            raise ValidationError(exc.message)
        mine = PersonalTag.objects.filter(owner=self.owner).exclude(pk=self.instance.pk)
        clash = services.name_clash(mine, name)
        if clash is not None:
            raise ValidationError(gettext("你已有个人标签“%(name)s”，视为同名（%(rule)s）。") % {
                "name": clash, "rule": services.NAME_RULE})
        return name


@admin.register(PersonalTag)
class PersonalTagAdmin(admin.ModelAdmin):
    """个人标签: each employee sees and manages only their own (admins included)."""

    form = PersonalTagForm
    list_display = ("name", "created_at")
    search_fields = ("name",)

    def get_queryset(self, request):
        return PersonalTag.objects.restrict(_actor(request), "view")

    def get_form(self, request, obj=None, change=False, **kwargs):
        base = super().get_form(request, obj, change=change, **kwargs)
        owner = request.user

        class OwnerForm(base):
            def __init__(self, *args, **kw):
                kw["owner"] = owner
                super().__init__(*args, **kw)

        return OwnerForm

    def save_model(self, request, obj, form, change):
        actor = _actor(request)
        if change:
            saved = services.personal_tag_update(actor=actor, personal_tag=PersonalTag.objects.get(pk=obj.pk),
                                                 name=form.cleaned_data["name"])
        else:
            saved = services.personal_tag_create(actor=actor, name=form.cleaned_data["name"])
        obj.pk, obj._state.adding, obj.owner_id = saved.pk, False, saved.owner_id

    def delete_model(self, request, obj):
        services.personal_tag_delete(actor=_actor(request), personal_tag=obj)

    def delete_queryset(self, request, queryset):
        for tag in list(queryset):
            self.delete_model(request, tag)


# ---------------------------------------------------------------- "what does this person see?"


def render_visible_tags_panel(request: HttpRequest, employee: Employee) -> str:
    """The groups and tags `employee` sees (the same selector as everywhere), for the employee page.

    Shown to those who see the whole taxonomy (tag admins, enterprise admins) and to the employee;
    a manager or HR looking at someone else would learn groups scoped away from them (permission matrix)."""
    viewer = request.user
    if viewer.pk != employee.pk and not (viewer.is_superuser or viewer.has_role("tag_admin", "enterprise_admin")):
        return ""
    groups = tag_groups_for_display(employee)
    scoped = TagGroup.objects.annotate(n=Count("departments")).filter(n__gt=0).count()
    return render_to_string(
        "admin/tags/employee_visible_tags.html",
        {"groups": groups, "employee": employee, "can_apply_locked": can_apply_locked(employee),
         "total": TagGroup.objects.count(), "scoped_total": scoped,
         "departments": [_department_label(d) for d in employee.departments.select_related("parent")]},
        request=request,
    )


register_employee_panel(_("可见的企业标签（此人能看到什么？）"), render_visible_tags_panel)
