"""Demo data of the tags app, called by `manage.py seed_demo`: the seed's taxonomy.

Idempotent: groups and tags that exist (same name under the same parent) are left alone.
Departments are looked up by name (created by `org.demo`); a missing one is skipped.
"""

from __future__ import annotations

from django.db.models import Value
from django.db.models.functions import Lower

from org.actors import SYSTEM, Actor
from org.models import Department, Employee, EmployeeStatus, Role

from . import services
from .models import PersonalTag, Tag, TagGroup

# (name, options, tags, children). options: scope (a callable → departments), locked, single_choice.
TAXONOMY = [
    # One level per customer: single-choice (a customer is never VIP and 普通 at once).
    ("客户等级", {"single_choice": True}, ["VIP客户", "潜在客户", "普通客户", "流失风险"], []),
    ("试听进度", {}, ["未约课", "已约课", "已试听", "试听未到"], []),
    ("转化阶段", {"single_choice": True}, ["初次接触", "高意向", "已报价", "已成交", "已流失"], []),
    ("客户来源", {"single_choice": True}, ["渠道活码", "老客户转介绍", "线下活动", "官网咨询", "电话咨询"], []),
    ("沟通偏好", {}, ["偏好电话联系", "偏好微信沟通", "工作日白天", "仅限晚间"], []),
    ("售后服务", {"scope": "after_sales"}, ["保养到期", "延保服务", "投诉处理中", "回访完成"], []),
    ("华北客户画像", {"scope": "north_china", "locked": True}, ["京津冀重点客户", "政企客户", "年度框架协议"], []),
    (
        "行业",
        {},
        [],
        [
            ("制造业", {}, ["工厂直采"], [
                ("汽车", {}, ["整车厂", "零部件供应商", "4S店集团"], []),
                ("电子", {}, ["消费电子", "半导体"], []),
            ]),
            ("教育培训", {}, [], [
                ("K12", {}, ["小学", "初中", "高中"], []),
                ("职业教育", {}, ["IT培训", "财会培训"], []),
            ]),
            ("零售", {}, ["连锁门店", "电商"], []),
        ],
    ),
]

# Personal tags for some employees (by position in the active staff list, so any org demo works).
PERSONAL_TAGS = [
    ["喜欢周末沟通", "偏好电话联系", "家长决策"],
    ["喜欢周末沟通", "需要发票", "价格敏感"],
    ["老朋友介绍", "下午三点后方便"],
    ["喜欢周末沟通", "关注售后"],
]


def _departments(kind: str) -> list[Department]:
    if kind == "after_sales":
        return list(Department.objects.filter(name="售后部"))
    if kind == "north_china":
        return list(Department.objects.filter(name="华北区"))
    return []


def _existing_group(name: str, parent: TagGroup | None) -> TagGroup | None:
    return (
        TagGroup.objects.filter(parent=parent).annotate(_l=Lower("name")).filter(_l=Lower(Value(name))).first()
    )


def _ensure_group(name, options, tags, children, parent, counts) -> None:
    group = _existing_group(name, parent)
    if group is None:
        scope = _departments(options.get("scope", ""))
        if options.get("scope") and not scope:
            # The scoped departments are missing (org demo not loaded): never create it open to everyone.
            return
        group = services.tag_group_create(
            actor=SYSTEM, name=name, parent=parent, departments=scope,
            locked=options.get("locked", False), single_choice=options.get("single_choice", False),
        )
        counts["groups"] += 1
    existing = {n.lower() for n in Tag.objects.filter(group=group).values_list("name", flat=True)}
    for tag_name in tags:
        if tag_name.lower() not in existing:
            services.tag_create(actor=SYSTEM, group=group, name=tag_name)
            counts["tags"] += 1
    for child in children:
        _ensure_group(*child, parent=group, counts=counts)


def seed(*, stdout=None, **options) -> None:
    counts = {"groups": 0, "tags": 0, "personal": 0}
    for entry in TAXONOMY:
        _ensure_group(*entry, parent=None, counts=counts)

    active = Employee.objects.filter(status=EmployeeStatus.ACTIVE, is_superuser=False).order_by("pk")
    # Staff first (they carry the personal notes of the seed), then managers, else anyone active.
    staff = list(active.filter(groups__name=Role.STAFF)[: len(PERSONAL_TAGS)])
    managers = list(active.filter(groups__name=Role.MANAGER).exclude(pk__in=[e.pk for e in staff]))
    employees = (staff + managers)[: len(PERSONAL_TAGS)] or list(active[: len(PERSONAL_TAGS)])
    for employee, names in zip(employees, PERSONAL_TAGS, strict=False):
        have = {n.lower() for n in PersonalTag.objects.filter(owner=employee).values_list("name", flat=True)}
        for name in names:
            if name.lower() not in have:
                services.personal_tag_create(actor=Actor(employee=employee), name=name)
                counts["personal"] += 1
    if stdout is not None:
        stdout.write(
            f"tags: {counts['groups']} groups, {counts['tags']} tags, {counts['personal']} personal tags created"
        )
