"""Admin forms of the customer portrait (客户画像): the one tag form over the viewer's visible tree,
and the note form. They validate input only; every write goes through `customers.services`."""

from __future__ import annotations

from dataclasses import dataclass, field

from django import forms
from django.utils.translation import gettext_lazy as _

from tags.models import NAME_MAX_LENGTH, PersonalTag, Tag, TagGroup
from tags.selectors import locked_group_ids


@dataclass
class GroupNode:
    """A visible tag group as the portrait shows it: its tags, depth and whether the viewer may edit it."""

    group: TagGroup
    tags: list[Tag] = field(default_factory=list)
    depth: int = 0
    editable: bool = True
    field_name: str = ""
    locked_by_ancestor: bool = False

    @property
    def colour(self) -> int:
        """Index into the chip palette: each group keeps its colour across pages."""
        return self.group.pk % 8

    @property
    def locked(self) -> bool:
        """Locked itself or through an ancestor (a locked group locks its whole subtree)."""
        return self.group.locked or self.locked_by_ancestor

    @property
    def single_choice(self) -> bool:
        return self.group.single_choice


def _tree_position(group) -> tuple:
    """A group's place among its siblings: the tree's own order (`tree_id`, `lft`: by `order`, then
    name, as mptt keeps it), so the portrait, the list's filter and the bulk form list groups exactly
    as the taxonomy tree and the API do."""
    tree_id, lft = getattr(group, "tree_id", None), getattr(group, "lft", None)
    if tree_id is not None and lft is not None:
        return (0, tree_id, lft)
    return (1, group.order, group.name, group.pk)


def build_tag_tree(groups, tags, *, can_edit_locked: bool) -> list[GroupNode]:
    """Visible groups in tree order (parents before children, siblings as the taxonomy tree orders
    them), each with its visible tags."""
    groups = list(groups)
    by_parent: dict[int | None, list[TagGroup]] = {}
    visible_ids = {g.pk for g in groups}
    for g in groups:
        parent = g.parent_id if g.parent_id in visible_ids else None
        by_parent.setdefault(parent, []).append(g)
    tags_by_group: dict[int, list[Tag]] = {}
    for t in sorted(tags, key=lambda t: (t.order, t.pk)):
        tags_by_group.setdefault(t.group_id, []).append(t)

    nodes: list[GroupNode] = []
    locked_ids = locked_group_ids()  # the service's definition: own flag or a locked ancestor

    def walk(parent_id, depth):
        for g in sorted(by_parent.get(parent_id, []), key=_tree_position):
            nodes.append(
                GroupNode(
                    group=g,
                    tags=tags_by_group.get(g.pk, []),
                    depth=depth,
                    editable=can_edit_locked or g.pk not in locked_ids,
                    field_name=f"group_{g.pk}",
                    locked_by_ancestor=g.pk in locked_ids and not g.locked,
                )
            )
            walk(g.pk, depth + 1)

    walk(None, 0)
    return nodes


class CustomerTagsForm(forms.Form):
    """编辑标签: one form over the viewer's visible tag tree.

    A field per visible group: checkboxes, or radio buttons with a "none" choice for a
    single-choice group. Groups the viewer cannot change (locked, rule 6) are shown greyed
    and must come back unchanged — a crafted POST that changes them is a form error.
    The viewer's own personal tags are one more field, plus a name to create a new one inline.
    `cleaned_data["tag_ids"]` is the wanted set of visible enterprise tags; the service keeps the
    hidden ones (rule 8).
    """

    NONE = ""

    personal_tags = forms.MultipleChoiceField(
        label=_("我的个人标签"), required=False, widget=forms.CheckboxSelectMultiple
    )
    new_personal_tag = forms.CharField(
        label=_("新建个人标签"), required=False, max_length=NAME_MAX_LENGTH,
        widget=forms.TextInput(attrs={"placeholder": _("输入名称，保存时创建并打上")}),
        help_text=_("最多 30 个字符"),
        error_messages={"max_length": _("最多 30 个字符（现在 %(show_value)d 个）。")},
    )

    def __init__(
        self,
        *args,
        nodes: list[GroupNode],
        current_tag_ids: set[int],
        personal_tags: list[PersonalTag],
        current_personal_ids: set[int],
        can_personal: bool,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        # No maxlength on the input: a browser would cut a longer name silently; the form says
        # "最多 30 个字符" instead (help text, and the error when it is longer).
        self.fields["new_personal_tag"].widget.attrs.pop("maxlength", None)
        self.all_nodes = list(nodes)
        self.nodes = [n for n in nodes if n.tags]
        self.can_personal = can_personal
        self.current_tag_ids = set(current_tag_ids)
        for node in self.nodes:
            choices = [(str(t.pk), t.name) for t in node.tags]
            held = [str(t.pk) for t in node.tags if t.pk in self.current_tag_ids]
            if node.single_choice:
                f = forms.ChoiceField(
                    label=node.group.name, required=False, widget=forms.RadioSelect,
                    choices=[(self.NONE, _("无"))] + choices,
                )
                f.initial = held[0] if held else self.NONE
            else:
                f = forms.MultipleChoiceField(
                    label=node.group.name, required=False, widget=forms.CheckboxSelectMultiple, choices=choices
                )
                f.initial = held
            f.node = node
            self.fields[node.field_name] = f
        if can_personal:
            self.fields["personal_tags"].choices = [(str(p.pk), p.name) for p in personal_tags]
            self.fields["personal_tags"].initial = [str(p.pk) for p in personal_tags if p.pk in current_personal_ids]
        else:
            del self.fields["personal_tags"]
            del self.fields["new_personal_tag"]

    @staticmethod
    def _as_set(value) -> set[str]:
        if value in (None, ""):
            return set()
        if isinstance(value, (list, tuple, set)):
            return {v for v in value if v != ""}
        return {value}

    def clean(self):
        data = super().clean()
        wanted: set[int] = set()
        for node in self.nodes:
            f = self.fields[node.field_name]
            value = self._as_set(data.get(node.field_name))
            if node.single_choice and hasattr(self.data, "getlist"):
                sent = [v for v in self.data.getlist(self.add_prefix(node.field_name)) if v]
                if len(set(sent)) > 1:  # a radio group sends one value; more is a crafted request
                    self.add_error(
                        node.field_name, _("标签组「%(group)s」是单选，只能选一个标签。") % {"group": node.group.name}
                    )
                    continue
            if not node.editable and value != self._as_set(f.initial):
                self.add_error(
                    node.field_name,
                    _("标签组「%(group)s」已锁定，你不能添加或移除其中的标签。") % {"group": node.group.name},
                )
                continue
            wanted.update(int(v) for v in value)
        data["tag_ids"] = wanted
        if "new_personal_tag" in data:
            data["new_personal_tag"] = (data.get("new_personal_tag") or "").strip()
        data["personal_tag_ids"] = {int(v) for v in data.get("personal_tags") or []} if self.can_personal else None
        return data

    def group_rows(self) -> list[dict]:
        """What the template draws per group, in tree order: the options with their checked state
        (a read-only group always shows the customer's real tags), its errors, and for read-only
        groups the hidden inputs that post their current value back unchanged."""
        rows = []
        for index, node in enumerate(self.all_nodes):
            if not node.tags:
                # A group with no tags of its own but tagged sub-groups (行业 > 制造业 > 汽车): a header row,
                # or its sub-groups would look nested under the previous group.
                below = []
                for later in self.all_nodes[index + 1:]:
                    if later.depth <= node.depth:
                        break
                    below.append(later)
                if any(n.tags for n in below):
                    rows.append({"node": node, "header": True})
                continue
            bf = self[node.field_name]
            initial = self._as_set(bf.field.initial)
            current = initial if (not node.editable or not self.is_bound) else self._as_set(bf.value())
            options = [
                {"value": value, "label": label, "checked": (value in current) or (value == "" and not current),
                 "id": f"id_{bf.html_name}_{value or 'none'}"}
                for value, label in bf.field.choices
            ]
            rows.append({
                "node": node, "name": bf.html_name, "options": options, "errors": bf.errors,
                "hidden": sorted(initial) if not node.editable else [],
                "type": "radio" if node.single_choice else "checkbox",
            })
        return rows

    @property
    def has_readonly_groups(self) -> bool:
        return any(not n.editable for n in self.nodes)

    def personal_options(self) -> list[dict]:
        if "personal_tags" not in self.fields:
            return []
        bf = self["personal_tags"]
        current = self._as_set(bf.value())
        return [{"value": v, "label": label, "checked": v in current, "id": f"id_{bf.html_name}_{v}"}
                for v, label in bf.field.choices]


class NoteForm(forms.Form):
    """添加跟进记录."""

    text = forms.CharField(
        label=_("跟进记录"), max_length=5000,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": _("记录这次沟通的要点…")}),
    )

    def clean_text(self):
        text = self.cleaned_data["text"].strip()
        if not text:
            raise forms.ValidationError(_("内容不能为空。"))
        return text
