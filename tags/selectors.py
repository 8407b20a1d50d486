"""Reads of the taxonomy. `visible_tag_groups` is the one place that decides what an employee sees."""

from __future__ import annotations

from django.db.models import Exists, OuterRef, Q, QuerySet

from org.models import Employee

from .models import PersonalTag, Tag, TagGroup


def _directly_visible_group_ids(employee: Employee) -> set[int]:
    """Groups whose own scope admits the employee: no departments, or one of theirs exactly."""
    through = TagGroup.departments.through
    scoped = through.objects.filter(taggroup_id=OuterRef("pk"))
    own = through.objects.filter(taggroup_id=OuterRef("pk"), department__members=employee)
    return set(
        TagGroup.objects.filter(Q(~Exists(scoped)) | Q(Exists(own))).values_list("pk", flat=True)
    )


def visible_tag_groups(employee: Employee | None) -> QuerySet[TagGroup]:
    """标签组可见性 (rules 3 and 4): the groups `employee` may see.

    A group is visible when its scope is empty or names one of the employee's departments
    exactly (sub-departments inherit nothing), and every ancestor group is visible too.
    `None` means enterprise level (an API client or automation acting for no employee).
    """
    if employee is None:
        return TagGroup.objects.all()
    direct = _directly_visible_group_ids(employee)
    # Trees are at most 3 levels deep: walk the (few) group rows once in memory.
    parents = dict(TagGroup.objects.values_list("pk", "parent_id"))
    visible = []
    for pk in direct:
        node, ok = parents.get(pk), True
        while node is not None:
            if node not in direct:
                ok = False
                break
            node = parents.get(node)
        if ok:
            visible.append(pk)
    return TagGroup.objects.filter(pk__in=visible)


def visible_tags(employee: Employee | None) -> QuerySet[Tag]:
    """Enterprise tags are visible exactly when their group is."""
    if employee is None:
        return Tag.objects.all()
    return Tag.objects.filter(group__in=visible_tag_groups(employee))


def own_personal_tags(employee: Employee | None) -> QuerySet[PersonalTag]:
    """Personal tags are the owner's alone: nobody else sees them, admins included."""
    if employee is None:
        return PersonalTag.objects.none()
    return PersonalTag.objects.filter(owner=employee)
