"""Fill a simulated corp from the portal's own data, so a demo's employees exist in "WeCom" too:
departments (WeCom id = `external_id` when numeric), active employees, and the tags already mapped
to WeCom ids (`external_id` on groups and tags)."""

from __future__ import annotations

from org.models import Department, Employee, EmployeeStatus
from tags.models import Tag

from ..taxonomy import group_wecom_name
from .state import CorpTag, CorpTagGroup


def _department_id(department: Department) -> int:
    external = (department.external_id or "").strip()
    return int(external) if external.isdigit() else 100000 + department.pk


def load_portal(sim) -> dict[str, int]:
    state = sim.state
    with state.lock:
        departments = list(Department.objects.order_by("tree_id", "lft"))
        ids = {d.pk: _department_id(d) for d in departments}
        for d in departments:
            state.add_department(ids[d.pk], d.name, parentid=ids.get(d.parent_id, 1), order=d.order)
        users = 0
        for employee in Employee.objects.filter(status=EmployeeStatus.ACTIVE).prefetch_related("departments"):
            state.add_user(employee.userid, employee.name,
                           [ids[d.pk] for d in employee.departments.all()] or [1])
            users += 1
        tags = 0
        for tag in Tag.objects.filter(external_id__isnull=False).select_related("group").order_by("group_id", "order"):
            group_id = tag.group.external_id or f"egportal{tag.group_id}"
            group = state.tag_groups.get(group_id)
            if group is None:
                # named as the corp-tag push names it (wecom.mapping: the group's path)
                group = state.tag_groups[group_id] = CorpTagGroup(group_id=group_id,
                                                                  group_name=group_wecom_name(tag.group))
            group.tag.append(CorpTag(id=tag.external_id, name=tag.name, order=tag.order))
            tags += 1
    return {"departments": len(departments), "users": users, "tags": tags}
