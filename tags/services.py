"""Writes of the taxonomy: tag groups, tags, personal tags. Keyword-only, atomic, all-or-nothing.

Rules enforced here (DESIGN.md rules 2, 5, 9):
- names are trimmed (inner whitespace runs become one space, control characters are refused),
  1–30 characters, unique among siblings compared as the health page does (`name_key`: NFKC, so
  全角/半角 fold, casefold, whitespace removed) — groups under one parent, tags in one group, an
  employee's personal tags;
- groups nest at most 3 levels, a move never makes a cycle nor pushes a subtree below level 2;
- scope departments must exist;
- only tag admins, enterprise admins and enterprise-level write keys change definitions;
  personal tags only by their owner.

Every write of the group tree runs under `tree_lock("tag_group")` so concurrent admins cannot
corrupt django-mptt's lft/rght fields.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence

from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from org.actors import Actor
from org.models import Department, Employee
from tagportal.errors import Conflict, NotAllowed, NotFound, ValidationFailed
from tagportal.locks import tree_lock

from . import hooks
from .models import MAX_GROUP_DEPTH, NAME_MAX_LENGTH, PersonalTag, Tag, TagGroup
from .selectors import normalise_for_compare as name_key

_UNSET = object()


# ------------------------------------------------------------------ shared checks


def clean_name(name, *, field: str = "name") -> str:
    """Trim, normalise (NFC) and check a name: no control characters (tab, newline…), inner
    whitespace runs become one space, 1–30 characters."""
    if not isinstance(name, str):
        raise ValidationFailed(_("名称必须是文本。"), details={field: "must be a string"})
    cleaned = unicodedata.normalize("NFC", name).strip()
    if any(unicodedata.category(ch) in ("Cc", "Zl", "Zp") for ch in cleaned):
        raise ValidationFailed(_("名称不能包含换行、制表符等控制字符。"), details={field: "control character"})
    cleaned = " ".join(cleaned.split())
    if not cleaned:
        raise ValidationFailed(_("名称不能为空。"), details={field: "blank"})
    if len(cleaned) > NAME_MAX_LENGTH:
        raise ValidationFailed(
            _("名称最多 %(max)s 个字符（现为 %(n)s 个）。")
                % {"max": NAME_MAX_LENGTH, "n": len(cleaned)}, details={field: "too long"}
        )
    return cleaned


NAME_RULE = gettext_lazy("名称比较时不区分大小写、全角/半角和空格")


def name_clash(queryset, name: str) -> str | None:
    """The existing name in `queryset` (one set of siblings) that counts as the same as `name`
    (`name_key`: NFKC + casefold + whitespace removed, as the health page compares), or None."""
    key = name_key(name)
    return next((n for n in queryset.values_list("name", flat=True) if name_key(n) == key), None)


def _same_name_message(*, what: str, existing: str, name: str) -> str:
    if existing == name:
        return _("%(what)s已有“%(existing)s”。") % {"what": what, "existing": existing}
    return _("%(what)s已有“%(existing)s”，与“%(name)s”视为同名（%(rule)s）。") % {
        "what": what, "existing": existing, "name": name, "rule": NAME_RULE}


def require_taxonomy_manager(actor: Actor) -> None:
    """Only tag admins, enterprise admins and enterprise-level write keys change definitions."""
    if not actor.can_write:
        raise NotAllowed(_("此 API 密钥为只读，不能修改。"), code="read_only")
    if not actor.manages_taxonomy:
        raise NotAllowed(_("只有标签管理员或企业管理员可以修改企业标签。"), code="not_tag_admin")


def _group_level(parent: TagGroup | None) -> int:
    return 0 if parent is None else parent.level + 1


def _check_group_sibling_name(*, name: str, parent: TagGroup | None, exclude_pk: int | None = None) -> None:
    siblings = TagGroup.objects.filter(parent=parent)
    if exclude_pk:
        siblings = siblings.exclude(pk=exclude_pk)
    existing = name_clash(siblings, name)
    if existing is not None:
        where = _("“%(parent)s”下的标签组中") % {"parent": parent.name} if parent else _("顶层的标签组中")
        raise ValidationFailed(_same_name_message(what=where, existing=existing, name=name),
                               details={"name": "duplicate", "existing": existing})


def _check_tag_sibling_name(*, name: str, group: TagGroup, exclude_pk: int | None = None) -> None:
    siblings = Tag.objects.filter(group=group)
    if exclude_pk:
        siblings = siblings.exclude(pk=exclude_pk)
    existing = name_clash(siblings, name)
    if existing is not None:
        raise ValidationFailed(_same_name_message(what=_("标签组“%(group)s”中")
            % {"group": group.name}, existing=existing, name=name),
                               details={"name": "duplicate", "existing": existing})


def _resolve_departments(departments: Iterable | None) -> list[Department]:
    """Departments given as objects or ids; every one must exist."""
    if departments is None:
        return []
    ids = []
    for d in departments:
        pk = d.pk if isinstance(d, Department) else d
        try:
            ids.append(int(pk))
        except (TypeError, ValueError):
            raise ValidationFailed(_("部门 “%(pk)s” 无效。") % {"pk": pk}, details={"departments": [str(pk)]})
    found = {d.pk: d for d in Department.objects.filter(pk__in=ids)}
    missing = [pk for pk in dict.fromkeys(ids) if pk not in found]
    if missing:
        raise ValidationFailed(
            _("部门不存在：%(ids)s。")
                % {"ids": ", ".join(map(str, missing))}, details={"departments": missing}, code="unknown_department"
        )
    return [found[pk] for pk in dict.fromkeys(ids)]


def departments_with_descendants(departments: Iterable[Department]) -> list[Department]:
    """The given departments plus all their sub-departments ("also add sub-departments")."""
    departments = list(departments)
    if not departments:
        return []
    return list(Department.objects.get_queryset_descendants(
        Department.objects.filter(pk__in=[d.pk for d in departments]), include_self=True
    ))


def _next_order(queryset) -> int:
    current = queryset.aggregate(m=Max("order"))["m"]
    return 0 if current is None else current + 10


def _relock(group: TagGroup) -> TagGroup:
    """Re-read a group inside the tree lock (its lft/rght/level may have moved since it was read)."""
    try:
        return TagGroup.objects.get(pk=group.pk)
    except TagGroup.DoesNotExist:
        raise NotFound(_("标签组不存在。"))


def _compact_tree_ids() -> None:
    """Keep tree ids 1..n without gaps, as `rebuild()` would make them.

    django-mptt leaves a hole when a root group is deleted or moved under another group; a
    valid tree here is one that `TagGroup.objects.rebuild()` would not change.
    """
    tree_ids = sorted(set(TagGroup.objects.values_list("tree_id", flat=True)))
    for expected, actual in enumerate(tree_ids, start=1):
        if actual != expected:
            TagGroup.objects.filter(tree_id=actual).update(tree_id=expected)


def _group_tag_ids(group_id: int, *, exclude=()) -> list[int]:
    return list(Tag.objects.filter(group_id=group_id).exclude(pk__in=list(exclude)).values_list("pk", flat=True))


def _refuse_single_choice_conflicts(*, group: TagGroup, incoming: Sequence[int], exclude=(), what: str) -> None:
    """Rule 7: a customer holds at most one tag of a single-choice group. A taxonomy change that
    would give customers two (merge or move into the group, turning single-choice on) is refused
    (409, the number of customers in the message, nothing changed)."""
    n = hooks.single_choice_conflicts(group_tag_ids=_group_tag_ids(group.pk, exclude=exclude),
                                      incoming_tag_ids=list(incoming))
    if n:
        raise Conflict(
            _("标签组“%(group)s”是单选组：%(what)s后将有 %(n)s 位客户同时有该组的两个标签。"
              "请先处理这些客户的标签，再重试。") % {"group": group.name, "what": what, "n": n},
            details={"customers": n, "group": group.pk},
            code="single_choice_conflict",
        )


def tag_group_single_choice_check(*, group: TagGroup, single_choice: bool | None) -> None:
    """Conflict (409) if turning `single_choice` on for `group` would leave customers holding two of
    its tags (for forms that must show the error before saving; `tag_group_update` checks it too)."""
    if single_choice and group.pk and not TagGroup.objects.filter(pk=group.pk, single_choice=True).exists():
        n = hooks.single_choice_conflicts(group_tag_ids=_group_tag_ids(group.pk), incoming_tag_ids=[])
        if n:  # the group is not single-choice yet: say why it cannot become one
            raise Conflict(
                _("有 %(n)s 位客户同时有标签组“%(group)s”的多个标签，不能设为单选；请先处理这些客户。")
                    % {"n": n, "group": group.name},
                details={"customers": n, "group": group.pk, "single_choice": "conflict"},
                code="single_choice_conflict",
            )


def tag_move_check(*, tag: Tag, group: TagGroup | None) -> None:
    """Conflict (409) if moving `tag` into the single-choice `group` would give customers two of its tags."""
    if group is not None and tag.pk and group.pk != tag.group_id and group.single_choice:
        _refuse_single_choice_conflicts(group=group, incoming=[tag.pk], what=_("移入标签“%(tag)s”") % {"tag": tag.name})


def _save_or_duplicate(obj, message: str) -> None:
    """Save; a unique-constraint race lost to another writer becomes a clear 400, not a 500."""
    try:
        with transaction.atomic():
            obj.save()
    except IntegrityError:
        raise ValidationFailed(message, details={"name": "duplicate"})


# ------------------------------------------------------------------ tag groups


@transaction.atomic
def tag_group_create(
    *,
    actor: Actor,
    name: str,
    parent: TagGroup | None = None,
    order: int | None = None,
    departments: Iterable | None = None,
    include_sub_departments: bool = False,
    locked: bool = False,
    single_choice: bool = False,
    external_id: str | None = None,
) -> TagGroup:
    """Create a tag group (标签组) under `parent` (or at the top), with its scope."""
    require_taxonomy_manager(actor)
    name = clean_name(name)
    scope = _resolve_departments(departments)
    if include_sub_departments:
        scope = departments_with_descendants(scope)
    with tree_lock("tag_group"):
        if parent is not None:
            parent = _relock(parent)
        if _group_level(parent) >= MAX_GROUP_DEPTH:
            raise ValidationFailed(_("标签组最多 %(n)s 级，不能在“%(parent)s”下再建子组。")
                % {"n": MAX_GROUP_DEPTH, "parent": parent.name},
                                   details={"parent": "too deep"}, code="too_deep")
        _check_group_sibling_name(name=name, parent=parent)
        if order is None:
            order = _next_order(TagGroup.objects.filter(parent=parent))
        group = TagGroup(name=name, parent=parent, order=order, locked=bool(locked),
                         single_choice=bool(single_choice), external_id=external_id or None)
        _save_or_duplicate(group, _("已有同名标签组“%(name)s”。") % {"name": name})
    group.departments.set(scope)
    hooks.run_taxonomy_changed_handlers(actor=actor, kind="group", action="created", objects=[group])
    return group


@transaction.atomic
def tag_group_update(
    *,
    actor: Actor,
    group: TagGroup,
    name: str | None = None,
    parent=_UNSET,
    order: int | None = None,
    departments: Iterable | None = None,
    include_sub_departments: bool = False,
    locked: bool | None = None,
    single_choice: bool | None = None,
) -> TagGroup:
    """Change a group's fields; `parent=` moves it (see `tag_group_move`). None leaves a field alone."""
    require_taxonomy_manager(actor)
    new_name = clean_name(name) if name is not None else None
    scope = None
    if departments is not None:
        scope = _resolve_departments(departments)
        if include_sub_departments:
            scope = departments_with_descendants(scope)
    with tree_lock("tag_group"):
        group = _relock(group)
        before = (group.name, group.parent_id, group.order)
        changed = []
        if new_name is not None and new_name != group.name:
            group.name = new_name  # checked at the destination by _move_group, or just below
            changed.append("name")
        if parent is not _UNSET and (parent.pk if parent else None) != group.parent_id:
            group = _move_group(group=group, parent=parent, order=order)  # saves the new name too
            order = None
            changed = []
        elif "name" in changed:
            _check_group_sibling_name(name=group.name, parent=group.parent, exclude_pk=group.pk)
        if locked is not None and bool(locked) != group.locked:
            group.locked = bool(locked)
            changed.append("locked")
        if single_choice is not None and bool(single_choice) != group.single_choice:
            tag_group_single_choice_check(group=group, single_choice=single_choice)
            group.single_choice = bool(single_choice)
            changed.append("single_choice")
        if changed:
            _save_or_duplicate(group, _("已有同名标签组“%(name)s”。") % {"name": group.name})
        if order is not None and order != group.order:
            group = _reorder_group(group=group, order=order)
    if scope is not None:
        group.departments.set(scope)
    if before != (group.name, group.parent_id, group.order):
        action = "moved" if before[1] != group.parent_id else "updated"
        hooks.run_taxonomy_changed_handlers(actor=actor, kind="group", action=action, objects=[group])
    return group


def _check_move(*, group: TagGroup, parent: TagGroup | None) -> None:
    """`group` may go under `parent`: not into itself or its subtree, and the subtree stays within
    MAX_GROUP_DEPTH levels. Raises ValidationFailed (`details` name the parent field)."""
    if parent is not None and (parent.pk == group.pk or parent.is_descendant_of(group)):
        raise ValidationFailed(_("不能把标签组“%(group)s”移到它自己或它的下级组里。") % {"group": group.name},
                               details={"parent": "cycle"}, code="cycle")
    subtree_height = (group.get_descendants().aggregate(m=Max("level"))["m"] or group.level) - group.level
    if _group_level(parent) + subtree_height >= MAX_GROUP_DEPTH:
        raise ValidationFailed(_("移动后“%(group)s”及其子组会超过 %(n)s 级。")
            % {"group": group.name, "n": MAX_GROUP_DEPTH},
                               details={"parent": "too deep"}, code="too_deep")


def _move_group(*, group: TagGroup, parent: TagGroup | None, order: int | None) -> TagGroup:
    """Move inside the tree lock: no cycle, the whole subtree stays within 3 levels."""
    if parent is not None:
        parent = _relock(parent)
    _check_move(group=group, parent=parent)
    _check_group_sibling_name(name=group.name, parent=parent, exclude_pk=group.pk)
    if order is None:
        order = _next_order(TagGroup.objects.filter(parent=parent))
    # mptt keeps siblings sorted by `order` (order_insertion_by) when parent and order change together.
    was_root = group.parent_id is None
    group.parent = parent
    group.order = order
    _save_or_duplicate(group, _("目标位置已有同名标签组“%(name)s”。") % {"name": group.name})
    if was_root:
        _compact_tree_ids()
    return _relock(group)


def _reorder_group(*, group: TagGroup, order: int) -> TagGroup:
    group.order = order
    group.save()  # order_insertion_by: mptt re-slots the node among its siblings
    return _relock(group)


@transaction.atomic
def tag_group_move(*, actor: Actor, group: TagGroup, parent: TagGroup | None, order: int | None = None) -> TagGroup:
    """Move a group (with its subtree and tags, which keep their customers) under `parent`."""
    require_taxonomy_manager(actor)
    with tree_lock("tag_group"):
        group = _relock(group)
        if (parent.pk if parent else None) == group.parent_id:
            if order is not None and order != group.order:
                group = _reorder_group(group=group, order=order)
                hooks.run_taxonomy_changed_handlers(actor=actor, kind="group", action="updated", objects=[group])
            return group
        group = _move_group(group=group, parent=parent, order=order)
    hooks.run_taxonomy_changed_handlers(actor=actor, kind="group", action="moved", objects=[group])
    return group


def tag_group_check(
    *, group: TagGroup | None = None, name: str, parent: TagGroup | None, departments: Iterable | None = None
) -> str:
    """The checks `tag_group_create/update` make, without writing: for forms that must show a field
    error before anything is saved. Returns the cleaned name; raises `ValidationFailed` (its
    `details` name the field)."""
    name = clean_name(name)
    _resolve_departments(departments)
    if parent is not None:
        parent = TagGroup.objects.filter(pk=parent.pk).first()
        if parent is None:
            raise ValidationFailed(_("上级标签组不存在。"), details={"parent": "unknown"})
    if group is not None and group.pk:
        current = TagGroup.objects.filter(pk=group.pk).first()
        if current is not None and (parent.pk if parent else None) != current.parent_id:
            _check_move(group=current, parent=parent)
    elif _group_level(parent) >= MAX_GROUP_DEPTH:
        raise ValidationFailed(_("标签组最多 %(n)s 级，不能在“%(parent)s”下再建子组。")
            % {"n": MAX_GROUP_DEPTH, "parent": parent.name},
                               details={"parent": "too deep"}, code="too_deep")
    _check_group_sibling_name(name=name, parent=parent, exclude_pk=group.pk if group else None)
    return name


@transaction.atomic
def tag_group_place(*, actor: Actor, group: TagGroup, target: TagGroup, position: str) -> TagGroup:
    """Drag and drop: put `group` as the last child of `target` or just left/right of it."""
    require_taxonomy_manager(actor)
    if position not in ("last-child", "first-child", "left", "right"):
        raise ValidationFailed(_("无法理解的移动位置。"), details={"position": position})
    with tree_lock("tag_group"):
        group, target = _relock(group), _relock(target)
        if group.pk == target.pk:
            return group
        parent = target if position in ("last-child", "first-child") else (
            _relock(target.parent) if target.parent_id else None)
        # Renumber the destination's other children in their current tree order (10, 20, ...): the
        # relative order is unchanged, so lft/rght stay right, and there is room between any two.
        siblings = list(TagGroup.objects.filter(parent=parent).exclude(pk=group.pk).order_by("tree_id", "lft"))
        for index, sibling in enumerate(siblings, start=1):
            if sibling.order != index * 10:
                TagGroup.objects.filter(pk=sibling.pk).update(order=index * 10)
                sibling.order = index * 10
        if position == "first-child":
            order = 5
        elif position == "last-child":
            order = (len(siblings) + 1) * 10
        else:
            anchor = next(s for s in siblings if s.pk == target.pk)
            order = anchor.order + (-5 if position == "left" else 5)
        group = _relock(group)
        if (parent.pk if parent else None) != group.parent_id:
            group = _move_group(group=group, parent=parent, order=order)
            action = "moved"
        else:
            group = _reorder_group(group=group, order=order)
            action = "updated"
    hooks.run_taxonomy_changed_handlers(actor=actor, kind="group", action=action, objects=[group])
    return group


@transaction.atomic
def tag_groups_reorder(*, actor: Actor, parent: TagGroup | None, ordered_ids: Sequence[int]) -> None:
    """Set the order of `parent`'s child groups to the given sequence (drag and drop)."""
    require_taxonomy_manager(actor)
    with tree_lock("tag_group"):
        children = {g.pk: g for g in TagGroup.objects.filter(parent=parent)}
        if set(ordered_ids) != set(children) or len(ordered_ids) != len(children):
            raise ValidationFailed(_("排序列表必须恰好包含该层的全部标签组。"), details={"ordered_ids": "mismatch"})
        for index, pk in enumerate(ordered_ids):
            TagGroup.objects.filter(pk=pk).update(order=index * 10)
        # Orders changed behind mptt's back: recompute the affected tree(s) from parent + order.
        if parent is not None:
            TagGroup.objects.partial_rebuild(parent.tree_id)
        else:
            TagGroup.objects.rebuild()
    hooks.run_taxonomy_changed_handlers(actor=actor, kind="group", action="updated",
                                        objects=list(TagGroup.objects.filter(parent=parent)))


@transaction.atomic
def tag_group_delete(*, actor: Actor, group: TagGroup) -> int:
    """Delete a group, its sub-groups and their tags; returns how many customer taggings went away.

    Callers confirm first with the count from `selectors.tag_group_usage`.
    """
    require_taxonomy_manager(actor)
    with tree_lock("tag_group"):
        group = _relock(group)
        # Row locks make a concurrent tag_create/tag_move into this subtree wait, then find it gone.
        subtree = list(group.get_descendants(include_self=True).select_for_update())
        tags = list(Tag.objects.filter(group__in=subtree))
        hooks.run_taxonomy_changed_handlers(actor=actor, kind="group", action="deleted",
                                            objects=sorted(subtree, key=lambda n: n.level))
        removed = hooks.run_tag_delete_handlers(actor=actor, tags=tags)
        Tag.objects.filter(pk__in=[t.pk for t in tags]).delete()
        # Delete leaves first (parent is PROTECT); mptt closes the gap per delete.
        for node in sorted(subtree, key=lambda n: -n.level):
            TagGroup.objects.get(pk=node.pk).delete()
        if group.parent_id is None:
            _compact_tree_ids()
    return removed


# ------------------------------------------------------------------ tags


@transaction.atomic
def tag_create(
    *, actor: Actor, group: TagGroup, name: str, order: int | None = None, external_id: str | None = None
) -> Tag:
    """Create an enterprise tag (企业标签) in `group`."""
    require_taxonomy_manager(actor)
    name = clean_name(name)
    group = TagGroup.objects.select_for_update().filter(pk=group.pk).first()
    if group is None:
        raise NotFound(_("标签组不存在。"))
    _check_tag_sibling_name(name=name, group=group)
    if order is None:
        order = _next_order(Tag.objects.filter(group=group))
    tag = Tag(group=group, name=name, order=order, external_id=external_id or None)
    _save_or_duplicate(tag, _("标签组“%(group)s”中已有同名标签“%(name)s”。") % {"group": group.name, "name": name})
    hooks.run_taxonomy_changed_handlers(actor=actor, kind="tag", action="created", objects=[tag])
    return tag


@transaction.atomic
def tag_update(*, actor: Actor, tag: Tag, name: str | None = None, order: int | None = None,
               group: TagGroup | None = None) -> Tag:
    """Rename, reorder or move a tag (a moved tag keeps its customers)."""
    require_taxonomy_manager(actor)
    tag = Tag.objects.select_for_update().filter(pk=tag.pk).first()
    if tag is None:
        raise NotFound(_("标签不存在。"))
    target = tag.group if group is None else TagGroup.objects.select_for_update().filter(pk=group.pk).first()
    if target is None:
        raise NotFound(_("标签组不存在。"))
    new_name = tag.name if name is None else clean_name(name)
    if target.pk != tag.group_id or new_name != tag.name:
        _check_tag_sibling_name(name=new_name, group=target, exclude_pk=tag.pk)
    tag_move_check(tag=tag, group=target)
    if target.pk != tag.group_id and order is None:
        order = _next_order(Tag.objects.filter(group=target))
    before = (tag.group_id, tag.name, tag.order)
    tag.group = target
    tag.name = new_name
    if order is not None:
        tag.order = order
    _save_or_duplicate(tag, _("标签组“%(group)s”中已有同名标签“%(name)s”。") % {"group": target.name, "name": new_name})
    if before[0] != tag.group_id:
        hooks.run_taxonomy_changed_handlers(actor=actor, kind="tag", action="moved", objects=[tag],
                                            previous_group_id=before[0])
    elif before != (tag.group_id, tag.name, tag.order):
        hooks.run_taxonomy_changed_handlers(actor=actor, kind="tag", action="updated", objects=[tag])
    return tag


def tag_move(*, actor: Actor, tag: Tag, group: TagGroup, order: int | None = None) -> Tag:
    """Move a tag to another group; the customers carrying it keep it."""
    return tag_update(actor=actor, tag=tag, group=group, order=order)


@transaction.atomic
def tags_reorder(*, actor: Actor, group: TagGroup, ordered_ids: Sequence[int]) -> None:
    """Set the order of a group's tags to the given sequence (drag and drop)."""
    require_taxonomy_manager(actor)
    current = set(Tag.objects.filter(group=group).values_list("pk", flat=True))
    if set(ordered_ids) != current or len(ordered_ids) != len(current):
        raise ValidationFailed(_("排序列表必须恰好包含该组的全部标签。"), details={"ordered_ids": "mismatch"})
    tags = [Tag(pk=pk, order=i * 10) for i, pk in enumerate(ordered_ids)]
    Tag.objects.bulk_update(tags, ["order"])
    hooks.run_taxonomy_changed_handlers(actor=actor, kind="tag", action="updated",
                                        objects=list(Tag.objects.filter(group=group)))


@transaction.atomic
def tag_delete(*, actor: Actor, tag: Tag) -> int:
    """Delete a tag; returns how many customers lost it (each removal audited)."""
    require_taxonomy_manager(actor)
    current = Tag.objects.filter(pk=tag.pk).first()
    if current is not None:
        hooks.run_taxonomy_changed_handlers(actor=actor, kind="tag", action="deleted", objects=[current])
    removed = hooks.run_tag_delete_handlers(actor=actor, tags=[tag])
    Tag.objects.filter(pk=tag.pk).delete()
    return removed


@transaction.atomic
def tag_merge(*, actor: Actor, source: Tag, target: Tag) -> int:
    """Merge `source` into `target`: its customers get `target` (never twice), `source` goes away.

    Every app holding tag references takes part through `tags.hooks` (customers' taggings and
    their audit by default). Returns the number of references moved.
    """
    require_taxonomy_manager(actor)
    if source.pk == target.pk:
        raise ValidationFailed(_("不能把标签合并到它自己。"), details={"target": "same as source"})
    # Lock both rows in a stable order so two merges cannot deadlock each other.
    locked = {t.pk: t for t in Tag.objects.select_for_update().filter(pk__in=[source.pk, target.pk]).order_by("pk")}
    if len(locked) != 2:
        raise NotFound(_("标签不存在。"))
    source, target = locked[source.pk], locked[target.pk]
    if target.group.single_choice:
        # After the merge, source's customers hold target: those holding another tag of target's group clash.
        _refuse_single_choice_conflicts(group=target.group, incoming=[source.pk], exclude=[target.pk],
                                        what=_("把“%(source)s”合并到“%(target)s”")
                                            % {"source": source.name, "target": target.name})
    moved = hooks.run_tag_merge_handlers(actor=actor, source=source, target=target)
    hooks.run_taxonomy_changed_handlers(actor=actor, kind="tag", action="deleted", objects=[source])
    source.delete()
    return moved


@transaction.atomic
def tag_external_id_set(*, tag: Tag, external_id: str | None) -> Tag:
    """Record the id another system (WeCom's corp tag id) gives `tag`; not a definition change, so
    no taxonomy-changed handler runs. An id another tag holds is taken from it (the id moved)."""
    external_id = external_id or None
    if external_id:
        Tag.objects.filter(external_id=external_id).exclude(pk=tag.pk).update(external_id=None)
    Tag.objects.filter(pk=tag.pk).update(external_id=external_id)
    tag.external_id = external_id
    return tag


@transaction.atomic
def tag_group_external_id_set(*, group: TagGroup, external_id: str | None) -> TagGroup:
    """`tag_external_id_set` for a group (WeCom's tag group id)."""
    external_id = external_id or None
    if external_id:
        TagGroup.objects.filter(external_id=external_id).exclude(pk=group.pk).update(external_id=None)
    TagGroup.objects.filter(pk=group.pk).update(external_id=external_id)
    group.external_id = external_id
    return group


# ------------------------------------------------------------------ personal tags


def _require_owner(actor: Actor, owner: Employee | None = None) -> Employee:
    if not actor.can_write:
        raise NotAllowed(_("此 API 密钥为只读，不能修改。"), code="read_only")
    if actor.employee is None:
        raise ValidationFailed(_("个人标签属于某个成员：请用 employee 指明成员。"), details={"employee": "required"})
    if owner is not None and owner.pk != actor.employee.pk:
        raise NotAllowed(_("个人标签只能由本人管理。"), code="not_owner")
    return actor.employee


def _check_personal_name(*, owner: Employee, name: str, exclude_pk: int | None = None) -> None:
    # The DB constraint only folds case: lock the owner so two concurrent writes of "价格敏感" /
    # "价格 敏感" cannot both pass this check.
    list(Employee.objects.select_for_update().filter(pk=owner.pk).values_list("pk", flat=True))
    existing = name_clash(PersonalTag.objects.filter(owner=owner).exclude(pk=exclude_pk), name)
    if existing is not None:
        raise ValidationFailed(_same_name_message(what=_("你的个人标签中"), existing=existing, name=name),
                               details={"name": "duplicate", "existing": existing})


@transaction.atomic
def personal_tag_create(*, actor: Actor, name: str) -> PersonalTag:
    """Create a personal tag (个人标签) for the acting employee."""
    owner = _require_owner(actor)
    name = clean_name(name)
    _check_personal_name(owner=owner, name=name)
    tag = PersonalTag(owner=owner, name=name)
    _save_or_duplicate(tag, _("你已有名为“%(name)s”的个人标签。") % {"name": name})
    return tag


@transaction.atomic
def personal_tag_update(*, actor: Actor, personal_tag: PersonalTag, name: str) -> PersonalTag:
    owner = _require_owner(actor, personal_tag.owner)
    name = clean_name(name)
    _check_personal_name(owner=owner, name=name, exclude_pk=personal_tag.pk)
    personal_tag.name = name
    _save_or_duplicate(personal_tag, _("你已有名为“%(name)s”的个人标签。") % {"name": name})
    return personal_tag


@transaction.atomic
def personal_tag_delete(*, actor: Actor, personal_tag: PersonalTag) -> None:
    _require_owner(actor, personal_tag.owner)
    hooks.personal_taggings_delete(actor=actor, personal_tag=personal_tag)  # audited, never silently lost
    personal_tag.delete()


@transaction.atomic
def personal_tag_get_or_create(*, actor: Actor, name: str) -> tuple[PersonalTag, bool]:
    """The acting employee's personal tag of that name (compared by `name_key`), created if missing."""
    owner = _require_owner(actor)
    name = clean_name(name)
    key = name_key(name)
    existing = next((t for t in PersonalTag.objects.filter(owner=owner) if name_key(t.name) == key), None)
    if existing:
        return existing, False
    return personal_tag_create(actor=actor, name=name), True


__all__ = [
    "clean_name", "name_clash", "name_key", "departments_with_descendants", "personal_tag_create",
    "personal_tag_delete",
    "personal_tag_get_or_create", "personal_tag_update", "require_taxonomy_manager", "tag_create", "tag_delete",
    "tag_group_check", "tag_group_create", "tag_group_delete", "tag_group_move", "tag_group_place",
    "tag_group_single_choice_check", "tag_group_update", "tag_groups_reorder", "tag_move_check",
    "tag_merge", "tag_move", "tag_update", "tags_reorder", "tag_external_id_set", "tag_group_external_id_set",
]
