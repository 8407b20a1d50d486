"""Reads of the taxonomy. `visible_tag_groups` is the one place that decides what an employee sees.

Who sees which enterprise tags (DESIGN.md rules 3–6):
- `None` (an API client or automation at enterprise level) and enterprise admins see every group
  (rule 5: "Enterprise admin: everything").
- Everyone else — staff, managers, HR **and tag admins** — sees and applies only the groups whose
  scope admits them (rule 5: "Everyone sees and applies only visible tags"). A tag admin *manages*
  every group in the taxonomy admin and the API (`TagGroupQuerySet.restrict`), but the tags they
  can put on customers are the ones visible to them, as for anyone in their departments.
- Locked groups are visible; whether one may apply their tags is `can_apply_locked`.
"""

from __future__ import annotations

import difflib
import unicodedata
from dataclasses import dataclass, field

from django.db.models import Count, Exists, OuterRef, Q, QuerySet

from org.models import Department, Employee, Role

from .models import MAX_GROUP_DEPTH, PersonalTag, Tag, TagGroup


def sees_everything(employee: Employee | None) -> bool:
    """Enterprise level: no employee named, or an enterprise admin."""
    return employee is None or employee.has_role(Role.ENTERPRISE_ADMIN)


def _admits(employee: Employee, ref: str) -> Q:
    """The group at `ref` (an outer-query path to a group id) admits the employee by its own scope:
    no departments at all, or one of the employee's departments exactly (rule 3)."""
    through = TagGroup.departments.through
    member_of = Employee.departments.through.objects.filter(employee_id=employee.pk).values("department_id")
    scoped = through.objects.filter(taggroup_id=OuterRef(ref))
    own = scoped.filter(department_id__in=member_of)
    return ~Q(Exists(scoped)) | Q(Exists(own))


def visible_tag_groups(employee: Employee | None) -> QuerySet[TagGroup]:
    """标签组可见性 (rules 3 and 4): the groups `employee` may see, as one SQL query.

    A group is visible when its scope is empty or names one of the employee's departments
    exactly (sub-departments inherit nothing), and every ancestor group is visible too.
    Groups nest at most `MAX_GROUP_DEPTH` levels, so "every ancestor" is the parent and the
    grandparent, each checked by the same scope test.
    """
    if sees_everything(employee):
        return TagGroup.objects.all()
    condition = _admits(employee, "pk")
    path = "parent"
    for _depth in range(1, MAX_GROUP_DEPTH):
        condition &= Q(**{f"{path}__isnull": True}) | _admits(employee, f"{path}_id")
        path += "__parent"
    # Defensive: a group deeper than the limit (only possible by writing around the services) is hidden.
    return TagGroup.objects.filter(condition, level__lt=MAX_GROUP_DEPTH)


def visible_tags(employee: Employee | None) -> QuerySet[Tag]:
    """Enterprise tags are visible exactly when their group is."""
    if sees_everything(employee):
        return Tag.objects.all()
    return Tag.objects.filter(group__in=visible_tag_groups(employee))


def own_personal_tags(employee: Employee | None) -> QuerySet[PersonalTag]:
    """Personal tags are the owner's alone: nobody else sees them, admins included."""
    if employee is None:
        return PersonalTag.objects.none()
    return PersonalTag.objects.filter(owner=employee)


def can_apply_locked(employee: Employee | None) -> bool:
    """Rule 6: staff and managers see a locked group's tags greyed; admins, API clients and automation apply them."""
    return employee is None or employee.has_role(Role.ENTERPRISE_ADMIN, Role.TAG_ADMIN)


def locked_group_ids() -> set[int]:
    """Rule 6, the one definition of "locked": a locked group locks its whole subtree, so a group is
    locked when it or any ancestor has the flag. One query over the (small) group table; the
    portrait form and the tagging service both ask here."""
    rows = {
        pk: (parent_id, locked)
        for pk, parent_id, locked in TagGroup.objects.values_list("pk", "parent_id", "locked")
    }
    result: set[int] = set()
    for pk in rows:
        node: int | None = pk
        while node is not None and node in rows:
            parent_id, locked = rows[node]
            if locked:
                result.add(pk)
                break
            node = parent_id
    return result


def tag_groups_for_display(employee: Employee | None) -> list[TagGroup]:
    """Visible groups in tree order with their tags prefetched (for the portrait and the panel)."""
    from django.db.models import Prefetch

    return list(
        visible_tag_groups(employee)
        .prefetch_related(Prefetch("tags", queryset=Tag.objects.order_by("order", "id")), "departments")
        .order_by("tree_id", "lft")
    )


# ------------------------------------------------------------------ usage (delete confirmations)


def tag_usage(tag_ids) -> dict[int, int]:
    """Customers carrying each tag (0 when none)."""
    from . import hooks

    return hooks.tagging_counts(list(tag_ids))


def tag_group_usage(group: TagGroup) -> dict:
    """What deleting `group` would remove: sub-groups, tags and customer taggings."""
    subtree = group.get_descendants(include_self=True)
    tag_ids = list(Tag.objects.filter(group__in=subtree).values_list("pk", flat=True))
    counts = tag_usage(tag_ids)
    return {"groups": subtree.count(), "tags": len(tag_ids), "taggings": sum(counts.values())}


# ------------------------------------------------------------------ taxonomy health

TOP_LEVEL_WARNING = 20
SIMILARITY_WARNING = 0.85


def normalise_for_compare(name: str) -> str:
    """Fold width (全角/半角), case and whitespace: the differences users don't see."""
    return "".join(unicodedata.normalize("NFKC", name).casefold().split())


@dataclass
class HealthReport:
    crowded_departments: list[tuple[Department, int]] = field(default_factory=list)
    everyone_top_level: int = 0
    near_duplicates: list[tuple[Tag, Tag, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        crowded = self.crowded_departments or self.everyone_top_level > TOP_LEVEL_WARNING
        return not crowded and not self.near_duplicates


def taxonomy_health(
    *, limit: int = TOP_LEVEL_WARNING, similarity: float = SIMILARITY_WARNING, similar: bool = True
) -> HealthReport:
    """Warnings: departments whose members see more than `limit` top-level groups, near-duplicate tags.

    A department's members see the open top-level groups plus those scoped to that department.
    Near-duplicates are names equal once case, full/half width and spaces are folded ("VIP客户" /
    "ｖｉｐ 客户"), and, with `similar`, names whose difflib ratio reaches `similarity` ("保养到期" /
    "保养已到期"). The same name in two groups (say "其他") is deliberate and not reported.
    `similar` is quadratic in the number of distinct names: the health page runs it, the
    tree's warning badge does not.
    """
    report = HealthReport()
    roots = TagGroup.objects.filter(parent__isnull=True).annotate(n=Count("departments"))
    open_roots = roots.filter(n=0).count()
    report.everyone_top_level = open_roots
    scoped_counts = dict(
        TagGroup.departments.through.objects.filter(taggroup__parent__isnull=True)
        .values_list("department_id")
        .annotate(n=Count("taggroup_id"))
        .values_list("department_id", "n")
    )
    over = {dept_id: open_roots + n for dept_id, n in scoped_counts.items() if open_roots + n > limit}
    depts = Department.objects.in_bulk(list(over))
    report.crowded_departments = sorted(((depts[d], n) for d, n in over.items()), key=lambda x: -x[1])

    tags = list(Tag.objects.select_related("group").order_by("pk"))
    seen: dict[str, Tag] = {}
    for tag in tags:
        key = normalise_for_compare(tag.name)
        if key not in seen:
            seen[key] = tag
        elif seen[key].name != tag.name:
            report.near_duplicates.append((seen[key], tag, "same"))
    keys = list(seen.items())
    if similar and len(keys) <= 3000:  # a taxonomy is a few hundred tags; beyond this, skip the quadratic pass
        for i, (ka, ta) in enumerate(keys):
            matcher = difflib.SequenceMatcher(None, "", ka)  # seq2 is the one difflib caches
            for kb, tb in keys[i + 1:]:
                if min(len(ka), len(kb)) < 2 or abs(len(ka) - len(kb)) > 2:
                    continue
                matcher.set_seq1(kb)
                if matcher.quick_ratio() >= similarity and matcher.ratio() >= similarity:
                    report.near_duplicates.append((ta, tb, "similar"))
    return report
