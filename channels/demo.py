"""Demo data of the channels app (a `seed_demo` part): four believable codes — 展会, 门店, 直播间,
公众号文章 — on the states the customers demo already gave its follow relations (`expo_bj`,
`store_qr`, `spring2026`, `wechat_ad`), so every earlier relation with those states becomes an add of
its code (one set-based `INSERT ... SELECT`), and the last 30 days of adds through each code —
existing customers adding one of its employees through it (through `customer_upsert`, so the
trigger tags them as in real life; the demo's number of customers stays the customers part's) — a few of
them lost since. Running it again adds nothing.
"""

from __future__ import annotations

import datetime as dt
import random

from django.db import connection, transaction
from django.utils import timezone

from customers.models import Customer, FollowRelation, RelationStatus, TagEvent, TagSource
from customers.services import customer_upsert, follow_relation_end
from org.actors import Actor
from org.models import Department, Employee, EmployeeStatus
from tags.models import Tag

from .models import ChannelAdd, ChannelCode, Rotation
from .services import channel_code_create

WORKDAY = [["09:00", "21:00"]]
CODES = [
    {
        "name": "2026北京车展", "state": "expo_bj", "department": "1101", "employees": ["zhangwei", "wangjing"],
        "backup_employees": ["manager_bj"], "daily_limit": 40, "rotation": Rotation.ROUND_ROBIN,
        "tags": [("客户来源", "线下活动"), ("转化阶段", "初次接触"), ("华北客户画像", "京津冀重点客户")],
        "remark_template": "{channel}-{name}", "per_day": (0, 6),
        "description": "车展展台易拉宝上的二维码，扫码领取试驾礼包。",
        "welcome_message": "您好，欢迎来到我们的车展展台！试驾礼包请到前台领取，有任何问题随时问我。",
    },
    {
        "name": "朝阳门店前台", "state": "store_qr", "department": "1101", "employees": ["zhangwei"],
        "backup_employees": ["wangjing"], "daily_limit": 15, "rotation": Rotation.ROUND_ROBIN,
        "working_hours": {str(d): WORKDAY for d in range(7)},
        "tags": [("客户来源", "渠道活码"), ("连锁门店", None)], "per_day": (0, 4),
        "remark_template": "门店-{name}",
        "description": "门店前台桌牌，营业时间 9:00–21:00 由店员接待，其余时间由备用成员接待。",
        "welcome_message": "您好，我是门店顾问，到店前可以先发我想看的车型，我帮您提前准备。",
    },
    {
        "name": "春季直播间", "state": "spring2026", "department": "2101",
        "employees": ["chenchen", "yangfan", "huangli"], "backup_employees": ["xuming"], "daily_limit": 20,
        "rotation": Rotation.LEAST_LOADED, "tags": [("客户来源", "渠道活码"), ("沟通偏好", "偏好微信沟通")],
        "per_day": (1, 9), "remark_template": "直播-{name}",
        "description": "春季新品直播间挂的企业微信二维码，直播期间客服轮流接待。",
        "welcome_message": "感谢关注直播间！直播专属优惠券已发放，回复“券”领取。",
    },
    {
        "name": "公众号文章《购车指南》", "state": "wechat_ad", "department": "3101",
        "employees": ["songjia", "tangning"], "backup_employees": [], "daily_limit": None,
        "rotation": Rotation.ROUND_ROBIN, "tags": [("客户来源", "官网咨询"), ("转化阶段", "初次接触")],
        "per_day": (0, 3), "remark_template": "",
        "description": "公众号文章末尾的“添加顾问”二维码。",
        "welcome_message": "您好，我是您的购车顾问，文章里提到的车型资料这就发您。",
    },
]
HISTORY_DAYS = 30
LOST_SHARE = 0.12
POOL = 5000


def _out(stdout, message: str) -> None:
    if stdout is not None:
        stdout.write(message)


def _tag_ids(pairs) -> list[int]:
    ids = []
    for group, name in pairs:
        qs = Tag.objects.filter(name=name) if group and name else Tag.objects.filter(name=group)
        if group and name:
            qs = qs.filter(group__name=group)
        tag = qs.order_by("pk").first()
        if tag is not None:
            ids.append(tag.pk)
    return ids


def _backfill(code: ChannelCode) -> int:
    """Every earlier relation with the code's state becomes one of its adds (one statement)."""
    add, rel = ChannelAdd._meta.db_table, FollowRelation._meta.db_table
    if connection.vendor == "postgresql":
        day = "(r.added_at AT TIME ZONE 'Asia/Shanghai')::date"
    else:
        day = "date(r.added_at, '+8 hours')"
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {add} (code_id, relation_id, customer_id, employee_id, added_at, day, ended_at, tags_added) "
            f"SELECT %s, r.id, r.customer_id, r.employee_id, r.added_at, {day}, NULL, '[]' FROM {rel} r "
            f"WHERE r.state = %s AND NOT EXISTS (SELECT 1 FROM {add} a WHERE a.relation_id = r.id)",
            [code.pk, code.state],
        )
        return cursor.rowcount


def _recent(code: ChannelCode, spec: dict, rng: random.Random, now: dt.datetime) -> tuple[int, int]:
    """New customers through the code over the last 30 days (the trigger tags them), some lost since."""
    employees = list(code.employees.filter(status=EmployeeStatus.ACTIVE).order_by("pk"))
    if not employees:
        return 0, 0
    actor = Actor(label="seed_demo")
    added = lost = 0
    lo, hi = spec["per_day"]
    # Existing customers (the demo's size is the customers part's): a sample of those who never came
    # through this code now add one of its employees through it.
    pool = list(Customer.objects.exclude(follow_relations__state=code.state).order_by("pk")
                .values_list("external_userid", flat=True)[:POOL])
    rng.shuffle(pool)
    followed = set(FollowRelation.objects.filter(employee__in=employees).values_list("customer__external_userid",
                                                                                      "employee_id"))
    n = 0
    for days_ago in range(HISTORY_DAYS - 1, -1, -1):
        for _i in range(rng.randint(lo, hi)):
            if not pool:
                return added, lost
            n += 1
            at = min(now, now - dt.timedelta(days=days_ago, minutes=rng.randint(0, 60 * 10)))
            employee = employees[n % len(employees)]
            external_userid = pool.pop()
            if (external_userid, employee.pk) in followed:
                continue
            customer, _created = customer_upsert(actor=actor, data={
                "external_userid": external_userid,
                "followers": [{"employee": employee.userid, "state": code.state, "add_way": 1,
                               "added_at": at.isoformat()}],
            })
            # The trigger audits its tags now: date them at the add, as they would have been, so the
            # 数据看板's tagging activity is not one spike on the day the demo was seeded.
            TagEvent.objects.filter(customer=customer, source=TagSource.CHANNEL, created_at__gte=now).update(
                created_at=at)
            added += 1
            if rng.random() < LOST_SHARE:
                ended = min(now, at + dt.timedelta(days=rng.randint(0, 6), hours=rng.randint(1, 20)))
                status = RelationStatus.LOST if rng.random() < 0.7 else RelationStatus.DELETED
                # As WeCom's del_follow_user / del_external_contact events do.
                follow_relation_end(actor=actor, customer=customer, employee=employee, status=status, ended_at=ended)
                lost += 1
    return added, lost


def seed(*, stdout=None, seed: int = 42, **options) -> None:
    rng = random.Random(seed + 10)
    now = timezone.now()
    if not Employee.objects.filter(userid__in=["zhangwei", "chenchen"]).exists():
        _out(stdout, "channels: no demo employees (run the org demo first); no channel codes created.")
        return
    made = backfilled = recent = lost = 0
    for spec in CODES:
        if ChannelCode.objects.filter(state=spec["state"]).exists():
            continue
        department = Department.objects.filter(external_id=spec["department"]).first()
        userids = set(Employee.objects.filter(status=EmployeeStatus.ACTIVE).values_list("userid", flat=True))
        with transaction.atomic():
            code = channel_code_create(actor=Actor(label="seed_demo"), data={
                "name": spec["name"], "state": spec["state"],
                "employees": [u for u in spec["employees"] if u in userids],
                "backup_employees": [u for u in spec["backup_employees"] if u in userids],
                "daily_limit": spec["daily_limit"], "rotation": spec["rotation"],
                "working_hours": spec.get("working_hours", {}), "tags": _tag_ids(spec["tags"]),
                "remark_template": spec["remark_template"], "description": spec["description"],
                "welcome_message": spec["welcome_message"], "department": department.pk if department else None,
            })
            made += 1
            backfilled += _backfill(code)
            a, b = _recent(code, spec, rng, now)
            recent, lost = recent + a, lost + b
    _out(stdout, f"channels: {made} channel codes, {backfilled} earlier relations counted as their adds, "
                 f"{recent} adds through them in the last {HISTORY_DAYS} days ({lost} lost since).")
