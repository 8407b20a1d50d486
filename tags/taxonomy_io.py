"""Import and export of the whole taxonomy as JSON (groups, tags, scopes by department external id).

Our format (what `export_taxonomy` writes)::

    {"format": "tagportal.taxonomy", "version": 1,
     "groups": [{"name": "售后服务", "order": 0, "locked": false, "single_choice": false,
                 "departments": ["12", "13"], "external_id": null,
                 "tags": [{"name": "保养到期", "order": 0, "external_id": null}],
                 "children": [ ...same shape, up to 3 levels... ]}]}

`departments` holds department `external_id`s; a department without one is written as
`{"path": "总部/华北区"}` (names from the root), which import also accepts.

WeCom's `externalcontact/get_corp_tag_list` answer is accepted as is::

    {"errcode": 0, "tag_group": [{"group_id": "et...", "group_name": "客户等级", "order": 1,
                                  "tag": [{"id": "et...", "name": "VIP客户", "order": 1}]}]}

WeCom sorts by `order` descending (bigger first); we sort ascending, so WeCom orders are negated
on import. WeCom ids become `external_id`s. WeCom groups are flat and scope-less.

Import merges into the existing taxonomy: a group is matched by name under the same parent
(compared as `services.name_key`: case, 全角/半角 and spaces ignored), a tag by name in its
group; missing ones are created, flags and scopes of matched groups are updated to the file's.
Everything is validated first; on any error nothing
changes and `ValidationFailed.details` lists every problem with its path in the file.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import Prefetch
from django.utils.translation import gettext as _

from org.actors import Actor
from org.models import Department
from tagportal.errors import ValidationFailed

from . import services
from .models import MAX_GROUP_DEPTH, NAME_MAX_LENGTH, Tag, TagGroup

FORMAT = "tagportal.taxonomy"
VERSION = 1


# ------------------------------------------------------------------ export


def _department_paths() -> dict[int, str]:
    depts = list(Department.objects.order_by("tree_id", "lft").values("pk", "name", "parent_id"))
    paths: dict[int, str] = {}
    for d in depts:  # tree order: parents come first
        paths[d["pk"]] = f"{paths[d['parent_id']]}/{d['name']}" if d["parent_id"] in paths else d["name"]
    return paths


def taxonomy_export() -> dict:
    """The whole taxonomy as a JSON-ready dict (our format)."""
    groups = list(
        TagGroup.objects.order_by("tree_id", "lft").prefetch_related(
            Prefetch("tags", queryset=Tag.objects.order_by("order", "id")), "departments"
        )
    )
    paths = None
    nodes: dict[int, dict] = {}
    roots = []
    for g in groups:
        scope = []
        for d in sorted(g.departments.all(), key=lambda d: d.pk):
            if d.external_id:
                scope.append(d.external_id)
            else:
                paths = paths or _department_paths()
                scope.append({"path": paths[d.pk]})
        node = {
            "name": g.name, "order": g.order, "locked": g.locked, "single_choice": g.single_choice,
            "departments": scope, "external_id": g.external_id,
            "tags": [{"name": t.name, "order": t.order, "external_id": t.external_id} for t in g.tags.all()],
            "children": [],
        }
        nodes[g.pk] = node
        (nodes[g.parent_id]["children"] if g.parent_id else roots).append(node)
    return {"format": FORMAT, "version": VERSION, "groups": roots}


# ------------------------------------------------------------------ import


@dataclass
class ImportResult:
    groups_created: int = 0
    groups_updated: int = 0
    tags_created: int = 0
    tags_unchanged: int = 0
    errors: list = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"groups_created": self.groups_created, "groups_updated": self.groups_updated,
                "tags_created": self.tags_created, "tags_unchanged": self.tags_unchanged}


@dataclass
class _GroupPlan:
    name: str
    order: int | None
    locked: bool
    single_choice: bool
    departments: list[int] | None  # None: leave the scope alone (WeCom has none)
    external_id: str | None
    tags: list[tuple[str, int | None, str | None]]
    children: list[_GroupPlan]


def _from_wecom(data: dict) -> list[dict]:
    groups = []
    for g in data.get("tag_group") or []:
        if not isinstance(g, dict):
            groups.append(g)
            continue
        if g.get("deleted"):
            continue
        groups.append({
            "name": g.get("group_name"),
            "order": -int(g["order"]) if isinstance(g.get("order"), int) else None,
            "external_id": g.get("group_id"),
            "departments": None,
            "tags": [
                {"name": t.get("name") if isinstance(t, dict) else t,
                 "order": -int(t["order"]) if isinstance(t, dict) and isinstance(t.get("order"), int) else None,
                 "external_id": t.get("id") if isinstance(t, dict) else None}
                for t in (g.get("tag") or []) if not (isinstance(t, dict) and t.get("deleted"))
            ],
        })
    return groups


def _group_label(index: int, raw) -> str:
    name = raw.get("name") if isinstance(raw, dict) else None
    if isinstance(name, str) and name.strip():
        return _("第 %(n)s 个标签组“%(name)s”") % {"n": index + 1, "name": name.strip()[:40]}
    return _("第 %(n)s 个标签组") % {"n": index + 1}


def _tag_label(index: int, raw) -> str:
    name = raw.get("name") if isinstance(raw, dict) else raw
    if isinstance(name, str) and name.strip():
        return _("第 %(n)s 个标签“%(name)s”") % {"n": index + 1, "name": name.strip()[:40]}
    return _("第 %(n)s 个标签") % {"n": index + 1}


def _plan(data) -> list[_GroupPlan]:
    """Validate the whole file; raise ValidationFailed listing every problem, or return the plan.

    Each problem has `path` (where in the JSON, for programs: `groups[0].tags[2].name`), `where`
    (the same for people: 第 1 个标签组“客户等级” › 第 3 个标签“VIP”) and `error`."""
    if not isinstance(data, dict):
        raise ValidationFailed(_("文件内容必须是 JSON 对象。"),
                               details=[{"path": "$", "where": _("整个文件"), "error": _("不是 JSON 对象")}])
    if "tag_group" in data:
        raw_groups = _from_wecom(data)
    elif "groups" in data:
        if data.get("format", FORMAT) != FORMAT:
            raise ValidationFailed(_("未知的文件格式：%(format)s。") % {"format": data.get("format")},
                                   details=[{"path": "format", "where": _("文件格式"), "error": _("未知的格式")}])
        raw_groups = data["groups"]
    else:
        raise ValidationFailed(_("找不到 groups（本系统格式）或 tag_group（企业微信格式）。"),
                               details=[{"path": "$", "where": _("整个文件"), "error": _("没有标签组")}])
    errors: list[dict] = []
    by_external = dict(Department.objects.exclude(external_id=None).values_list("external_id", "pk"))
    by_path = {v: k for k, v in _department_paths().items()}

    def problem(path: str, where: str, error: str) -> None:
        errors.append({"path": path, "where": where, "error": error})

    def name_of(value, path, where):
        try:
            return services.clean_name(value)
        except ValidationFailed as exc:
            problem(path, where, exc.message)
            return None

    def order_of(value, path, where):
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            problem(path, where, _("排序必须是整数"))
            return None
        return value

    def scope_of(value, path, where):
        if value is None:
            return None
        if not isinstance(value, list):
            problem(path, where, _("可见部门必须是列表"))
            return []
        ids = []
        for i, d in enumerate(value):
            by_path_given = isinstance(d, dict) and "path" in d
            pk = by_path.get(str(d["path"])) if by_path_given else by_external.get(str(d))
            if pk is None:
                shown = d["path"] if by_path_given else d
                problem(f"{path}[{i}]", where, _("部门不存在：%(department)s") % {"department": shown})
            else:
                ids.append(pk)
        return ids

    def walk(items, path, level, parent_where) -> list[_GroupPlan]:
        if not isinstance(items, list):
            problem(path, parent_where or _("整个文件"), _("标签组必须是列表"))
            return []
        plans, seen = [], set()
        for i, g in enumerate(items):
            here = f"{path}[{i}]"
            where = f"{parent_where} › {_group_label(i, g)}" if parent_where else _group_label(i, g)
            if not isinstance(g, dict):
                problem(here, where, _("标签组必须是对象"))
                continue
            if level >= MAX_GROUP_DEPTH:
                problem(here, where, _("标签组最多 %(n)s 级") % {"n": MAX_GROUP_DEPTH})
                continue
            name = name_of(g.get("name"), f"{here}.name", where)
            if name is not None:
                if services.name_key(name) in seen:
                    problem(f"{here}.name", where, _("同级重复的标签组名“%(name)s”（%(rule)s）")
                            % {"name": name, "rule": services.NAME_RULE})
                seen.add(services.name_key(name))
            tags, tag_seen = [], set()
            raw_tags = g.get("tags") or []
            if not isinstance(raw_tags, list):
                problem(f"{here}.tags", where, _("标签必须是列表"))
                raw_tags = []
            for j, t in enumerate(raw_tags):
                t = t if isinstance(t, dict) else {"name": t}
                tag_where = f"{where} › {_tag_label(j, t)}"
                tname = name_of(t.get("name"), f"{here}.tags[{j}].name", tag_where)
                if tname is None:
                    continue
                if services.name_key(tname) in tag_seen:
                    problem(f"{here}.tags[{j}].name", tag_where, _("组内重复的标签名“%(name)s”（%(rule)s）")
                            % {"name": tname, "rule": services.NAME_RULE})
                tag_seen.add(services.name_key(tname))
                tags.append((tname, order_of(t.get("order"), f"{here}.tags[{j}].order", tag_where),
                             t.get("external_id")))
            plans.append(_GroupPlan(
                name=name or "", order=order_of(g.get("order"), f"{here}.order", where),
                locked=bool(g.get("locked", False)), single_choice=bool(g.get("single_choice", False)),
                departments=scope_of(g.get("departments", []), f"{here}.departments", where),
                external_id=g.get("external_id") or None, tags=tags,
                children=walk(g.get("children") or [], f"{here}.children", level + 1, where),
            ))
        return plans

    plans = walk(raw_groups, "groups", 0, "")
    if errors:
        first = errors[0]
        raise ValidationFailed(
            _("导入文件有 %(n)s 处错误，未做任何修改。第一处：%(where)s：%(error)s")
            % {"n": len(errors), "where": first["where"], "error": first["error"]},
            details=errors,
        )
    return plans


@transaction.atomic
def taxonomy_import(*, actor: Actor, data) -> ImportResult:
    """Merge a taxonomy file into ours; all or nothing (see the module docstring)."""
    services.require_taxonomy_manager(actor)
    plans = _plan(data)
    result = ImportResult()

    def apply(plan: _GroupPlan, parent: TagGroup | None, level: int):
        key = services.name_key(plan.name)  # matched as the services compare sibling names
        existing = next((g for g in TagGroup.objects.filter(parent=parent) if services.name_key(g.name) == key), None)
        if existing is None:
            group = services.tag_group_create(
                actor=actor, name=plan.name, parent=parent, order=plan.order, departments=plan.departments or [],
                locked=plan.locked, single_choice=plan.single_choice, external_id=plan.external_id,
            )
            result.groups_created += 1
        else:
            group = services.tag_group_update(
                actor=actor, group=existing, departments=plan.departments, locked=plan.locked,
                single_choice=plan.single_choice, order=plan.order,
            )
            result.groups_updated += 1
        have = {services.name_key(n) for n in Tag.objects.filter(group=group).values_list("name", flat=True)}
        for name, order, external_id in plan.tags:
            if services.name_key(name) in have:
                result.tags_unchanged += 1
                continue
            services.tag_create(actor=actor, group=group, name=name, order=order, external_id=external_id)
            result.tags_created += 1
        for child in plan.children:
            apply(child, group, level + 1)

    for plan in plans:
        apply(plan, None, 0)
    return result


__all__ = ["ImportResult", "taxonomy_export", "taxonomy_import", "NAME_MAX_LENGTH"]
