"""Demo data of the customers app, called by `manage.py seed_demo --customers N`.

Customers with followers (mostly the staff of 销售部 and 售后部 from `org.demo`), enterprise
taggings with a realistic skew (a few tags on about half the customers, most on few; about ten
per customer), at most one tag per single-choice group, personal taggings on the owners' own
customers, notes and chat messages (some mentioning 保养, 试听, 价格) and an audit history for a
sample of the taggings.

Built set-based so that a million customers take minutes on PostgreSQL: rows generated in
Python go in with `COPY` (psycopg 3 `cursor.copy()`), batched `INSERT`s elsewhere (SQLite);
taggings are drawn by the database itself (`INSERT ... SELECT ... WHERE random() < p`), chunk by
chunk, one transaction per chunk. Running it again adds customers up to N (never duplicates).
"""

from __future__ import annotations

import datetime as dt
import json
import random
import time
from bisect import bisect
from collections import defaultdict
from itertools import accumulate

from django.db import connection, transaction
from django.utils import timezone

from org.models import Employee, EmployeeStatus, Role
from tags.models import PersonalTag, Tag, TagGroup

from .models import Customer, FollowRelation, Message, Note, PersonalTagging, TagEvent, Tagging

CHUNK = 100_000
TAGGINGS_PER_CUSTOMER = 10.0
HISTORY_SAMPLE = 20_000  # customers whose seeded taggings get TagEvent rows
CHAT_SAMPLE = 30_000  # customers who get notes and chat messages

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华玉萍红娥玲芬燕彬斌宇浩凯晨欣怡子涵梓轩"
CORPS = ["华信科技", "远航物流", "金桥贸易", "新东方教育", "蓝海汽车", "星辰电子", "安泰保险", "鼎盛地产",
         "和睦家医疗", "恒通机械", "优学培训", "绿源食品"]
STATES = [("", 55), ("spring2026", 12), ("expo_bj", 8), ("wechat_ad", 10), ("store_qr", 10), ("referral", 5)]
# The channels demo's codes hand out these states, each to one team (the org demo's department ids):
# a WeCom contact way only sends customers to its own receivers, so nobody else's relation has one.
STATE_TEAMS = {"expo_bj": "1101", "store_qr": "1101", "spring2026": "2101", "wechat_ad": "3101"}
ADD_WAYS = [(1, 40), (2, 10), (3, 20), (0, 10), (201, 20)]  # WeCom add_way codes: QR, search, card, ...
REMARKS = ["", "", "", "老客户", "家长", "王总", "采购负责人", "决策人", "朋友推荐", "展会认识"]
INBOUND = [
    "你好，想了解一下价格", "车子该保养了，什么时候有空位？", "孩子想来试听一节课", "上次的报价还有效吗？",
    "保养套餐包含哪些项目？", "试听课是周末吗？", "价格能再优惠一点吗？", "好的，收到", "我考虑一下",
    "发票什么时候能开？", "售后电话是多少？", "这个月有活动吗？",
]
OUTBOUND = [
    "您好，我是您的专属顾问，有任何问题随时找我", "本周六上午可以安排保养", "试听课已为您预约，周日下午两点",
    "价格表已发您，请查收", "好的，我帮您申请一下优惠", "感谢您的信任！", "提醒您：保养到期了", "期待您的到来",
]
NOTES = ["电话沟通，客户对价格比较敏感", "已约周末到店", "客户要求发送报价单", "试听反馈良好，家长满意",
         "保养提醒已发送", "客户暂时不考虑，下月再跟进", "已加微信，待进一步沟通"]


def _out(stdout, message: str) -> None:
    if stdout is not None:
        stdout.write(message)


def _weighted(rng: random.Random, pairs):
    values = [v for v, _w in pairs]
    cum = list(accumulate(w for _v, w in pairs))
    total = cum[-1]
    return lambda: values[bisect(cum, rng.random() * total)]


def state_for(state: str, departments: set[str]) -> str:
    """`state` if an employee of these departments (external ids) could have been given it, else ''."""
    team = STATE_TEAMS.get(state)
    return state if team is None or team in departments else ""


def employee_teams() -> dict[int, set[str]]:
    """Each employee's departments, by external id."""
    teams: dict[int, set[str]] = defaultdict(set)
    rows = Employee.departments.through.objects.values_list("employee_id", "department__external_id")
    for employee_id, external_id in rows:
        teams[employee_id].add(external_id)
    return teams


def _followers_pool(rng: random.Random):
    """Draw follower ids: staff of 销售部/售后部 most often, managers and other staff less, the departed
    (whose customers await a transfer) sometimes."""
    employees = list(
        Employee.objects.filter(groups__name__in=[Role.STAFF, Role.MANAGER], is_superuser=False)
        .distinct()
        .prefetch_related("departments", "groups")
    )
    pairs = []
    for e in employees:
        front = any(d.name in ("销售部", "售后部") for d in e.departments.all())
        if e.status == EmployeeStatus.DEPARTED:
            weight = 3
        elif e.has_role(Role.STAFF):
            weight = 10 if front else 2
        else:
            weight = 3
        pairs.append((e.pk, weight))
    return (_weighted(rng, pairs) if pairs else None), len(pairs)


def _adapt(value):
    """Values for a plain INSERT (SQLite): datetimes as Django stores them."""
    if isinstance(value, dt.datetime):
        return connection.ops.adapt_datetimefield_value(value)
    return value


def _write(model, columns: list[str], rows) -> int:
    """Insert rows (tuples in `columns` order): COPY on PostgreSQL, batched INSERTs elsewhere."""
    table = connection.ops.quote_name(model._meta.db_table)
    cols = ", ".join(connection.ops.quote_name(c) for c in columns)
    n = 0
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with cursor.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
                    n += 1
            return n
        sql = f"INSERT INTO {table} ({cols}) VALUES ({', '.join(['%s'] * len(columns))})"
        batch = []
        for row in rows:
            batch.append([_adapt(v) for v in row])
            if len(batch) >= 2000:
                cursor.executemany(sql, batch)
                n += len(batch)
                batch = []
        if batch:
            cursor.executemany(sql, batch)
            n += len(batch)
    return n


def _random_sql() -> str:
    """A uniform [0, 1) draw per row, in the database's dialect."""
    if connection.vendor == "postgresql":
        return "random()"
    return "((abs(random()) %% 1000000) / 1000000.0)"


def _tag_plan(rng: random.Random) -> tuple[list[tuple[int, float]], list[list[tuple[int, float]]]]:
    """Probabilities per tag: multi-choice tags follow a skewed curve (the top few on ~half the
    customers, the long tail on a few percent); each single-choice group covers ~85% of customers
    with one tag, skewed too. Scaled to about TAGGINGS_PER_CUSTOMER in total."""
    single = set(TagGroup.objects.filter(single_choice=True).values_list("pk", flat=True))
    tags = list(Tag.objects.order_by("group__tree_id", "group__lft", "order", "pk").values_list("pk", "group_id"))
    multi = [pk for pk, g in tags if g not in single]
    groups: dict[int, list[int]] = {}
    for pk, g in tags:
        if g in single:
            groups.setdefault(g, []).append(pk)
    single_plans = []
    for tag_ids in groups.values():
        weights = [1 / (i + 1) ** 0.8 for i in range(len(tag_ids))]
        total = sum(weights)
        single_plans.append([(t, 0.85 * w / total) for t, w in zip(tag_ids, weights, strict=True)])

    ranked = multi[:]
    rng.shuffle(ranked)
    by_name = dict(Tag.objects.filter(pk__in=multi).values_list("name", "pk"))
    if "VIP客户" in by_name:  # a believable share of VIPs, whatever the shuffle
        ranked.remove(by_name["VIP客户"])
        ranked.insert(min(6, len(ranked)), by_name["VIP客户"])
    target = max(TAGGINGS_PER_CUSTOMER - 0.85 * len(single_plans), 1.0)
    lo, hi = 0.0, 10.0
    for _ in range(40):
        a = (lo + hi) / 2
        if sum(min(0.5, a / (i + 1) ** 0.9) for i in range(len(ranked))) < target:
            lo = a
        else:
            hi = a
    multi_plan = [(t, max(0.005, min(0.5, lo / (i + 1) ** 0.9))) for i, t in enumerate(ranked)]
    return multi_plan, single_plans


def _analyze() -> None:
    with connection.cursor() as cursor:
        for model in (Customer, FollowRelation, Tagging, PersonalTagging, TagEvent):
            cursor.execute(f"ANALYZE {model._meta.db_table}")


def _tag_chunk(lo: int, hi: int, multi_plan, single_plans, rng: random.Random) -> None:
    """Taggings for customers lo..hi: drawn by the database for multi-choice tags; one pick per
    single-choice group drawn here (one row per customer at most)."""
    tagging = connection.ops.quote_name(Tagging._meta.db_table)
    customer = connection.ops.quote_name(Customer._meta.db_table)
    rnd = _random_sql()
    with connection.cursor() as cursor:
        for tag_id, p in multi_plan:
            cursor.execute(
                f"INSERT INTO {tagging} (customer_id, tag_id, created_at) "
                f"SELECT id, %s, created_at FROM {customer} WHERE id BETWEEN %s AND %s AND {rnd} < %s",
                [tag_id, lo, hi, p],
            )
    now = timezone.now()
    for plan in single_plans:
        cum = list(accumulate(p for _t, p in plan))
        ids = [t for t, _p in plan]

        def rows(cum=cum, ids=ids):
            for cid in range(lo, hi + 1):
                i = bisect(cum, rng.random())
                if i < len(ids):
                    yield (cid, ids[i], now)

        _write(Tagging, ["customer_id", "tag_id", "created_at"], rows())


def _personal_chunk(lo: int, hi: int) -> None:
    """The owners' personal tags on about a quarter of the customers they follow."""
    pt = connection.ops.quote_name(PersonalTagging._meta.db_table)
    fr = connection.ops.quote_name(FollowRelation._meta.db_table)
    ptag = connection.ops.quote_name(PersonalTag._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {pt} (customer_id, personal_tag_id, created_at) "
            f"SELECT fr.customer_id, p.id, fr.added_at FROM {fr} fr JOIN {ptag} p ON p.owner_id = fr.employee_id "
            f"WHERE fr.customer_id BETWEEN %s AND %s AND {_random_sql()} < 0.25",
            [lo, hi],
        )


def _history(lo: int, hi: int) -> None:
    """Audit rows for the seeded taggings of customers lo..hi (sources vary), dated when the customer
    arrived, by the follower they added first."""
    te = connection.ops.quote_name(TagEvent._meta.db_table)
    tg = connection.ops.quote_name(Tagging._meta.db_table)
    tag = connection.ops.quote_name(Tag._meta.db_table)
    fr = connection.ops.quote_name(FollowRelation._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {te} (customer_id, tag_id, tag_name, action, source, actor_employee_id, actor_label, "
            "created_at) "
            "SELECT t.customer_id, t.tag_id, g.name, 'add', "
            "CASE t.tag_id %% 5 WHEN 0 THEN 'channel' WHEN 1 THEN 'bulk' WHEN 2 THEN 'import' ELSE 'manual' END, "
            "f.employee_id, 'seed_demo', t.created_at "
            f"FROM {tg} t JOIN {tag} g ON g.id = t.tag_id "
            f"JOIN {fr} f ON f.customer_id = t.customer_id AND f.employee_id = (SELECT f2.employee_id FROM {fr} f2 "
            "WHERE f2.customer_id = t.customer_id ORDER BY f2.added_at, f2.employee_id LIMIT 1) "
            "WHERE t.customer_id BETWEEN %s AND %s",
            [lo, hi],
        )


def _chat_chunk(lo: int, hi: int, relations: dict[int, list[int]], joined: dict[tuple[int, int], dt.datetime],
                rng: random.Random, now) -> None:
    """Notes and a short chat history for customers lo..hi: chat with their first follower, a note by
    one of their followers, each after that follower was added (and within the last 300 days)."""

    def since_added(cid: int, employee: int) -> dt.datetime:
        start = max(joined[cid, employee], now - dt.timedelta(days=300))
        return start + (now - start) * rng.random()

    def messages():
        for cid in range(lo, hi + 1):
            followers = relations.get(cid)
            if not followers:
                continue
            for k in range(rng.randint(1, 6)):
                inbound = rng.random() < 0.5
                content = rng.choice(INBOUND if inbound else OUTBOUND)
                sent = since_added(cid, followers[0])
                yield (f"demo-{cid}-{k}", cid, followers[0], "in" if inbound else "out", content, sent)

    def notes():
        for cid in range(lo, hi + 1):
            followers = relations.get(cid)
            if followers and rng.random() < 0.5:
                author = rng.choice(followers)
                yield (cid, author, rng.choice(NOTES), since_added(cid, author))

    _write(Message, ["msgid", "customer_id", "employee_id", "direction", "content", "sent_at"], messages())
    _write(Note, ["customer_id", "author_id", "text", "created_at"], notes())


def seed(*, stdout=None, customers: int = 300, seed: int = 42, **options) -> None:
    """Add customers until there are `customers` of them (see the module docstring)."""
    started = time.monotonic()
    rng = random.Random(seed)
    existing = Customer.objects.count()
    missing = customers - existing
    if missing <= 0:
        _out(stdout, f"customers: {existing} exist, none added.")
        return
    follower, n_followers = _followers_pool(rng)
    if follower is None:
        _out(stdout, "customers: no staff or managers (run the org demo first); no customers added.")
        return
    teams = employee_teams()
    multi_plan, single_plans = _tag_plan(rng)
    if not multi_plan and not single_plans:
        _out(stdout, "customers: no tags exist (run the tags demo first); customers will have no tags.")

    first = (Customer.objects.order_by("-pk").values_list("pk", flat=True).first() or 0) + 1
    last = first + missing - 1
    now = timezone.now()
    state = _weighted(rng, STATES)
    add_way = _weighted(rng, ADD_WAYS)
    for lo in range(first, last + 1, CHUNK):
        hi = min(lo + CHUNK - 1, last)
        relations: dict[int, list[int]] = {}
        arrived: dict[int, dt.datetime] = {}  # a customer arrives by adding their first follower
        joined: dict[tuple[int, int], dt.datetime] = {}  # (customer, employee): when they added them

        def customer_rows(lo=lo, hi=hi, relations=relations, arrived=arrived):
            for cid in range(lo, hi + 1):
                created = now - dt.timedelta(minutes=rng.randint(1, 60 * 24 * 720))
                wecom = rng.random() < 0.2
                name = rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.randint(1, 2)))
                n = 1 if rng.random() < 0.75 else (2 if rng.random() < 0.8 else 3)
                chosen = []
                for _ in range(n):
                    e = follower()
                    if e not in chosen:
                        chosen.append(e)
                relations[cid], arrived[cid] = chosen, created
                yield (
                    cid, f"wmdemo{cid:09d}", name, rng.choice(CORPS) if wecom else "", 2 if wecom else 1,
                    rng.choice((0, 1, 2)), "", json.dumps({"来源": "demo"}, ensure_ascii=False), created, created,
                )

        def relation_rows(relations=relations, arrived=arrived, joined=joined):
            for cid, employees in relations.items():
                for i, e in enumerate(employees):
                    # the first follower when the customer arrived, any others somewhere since
                    share = rng.randint(1, 60 * 24 * 700) / (60 * 24 * 700)
                    added = joined[cid, e] = arrived[cid] + (now - arrived[cid]) * (share if i else 0)
                    remark = rng.choice(REMARKS)
                    yield (cid, e, remark, "", added, add_way(), state_for(state(), teams[e]), "active")

        with transaction.atomic():
            _write(
                Customer,
                ["id", "external_userid", "name", "corp_name", "type", "gender", "avatar", "crm_fields",
                 "created_at", "updated_at"],
                customer_rows(),
            )
            _write(
                FollowRelation,
                ["customer_id", "employee_id", "remark", "description", "added_at", "add_way", "state", "status"],
                relation_rows(),
            )
            if connection.vendor == "postgresql" and lo == first:
                _analyze()  # fresh tables: give the planner row counts before the set-based statements
            _tag_chunk(lo, hi, multi_plan, single_plans, rng)
            _personal_chunk(lo, hi)
            if lo - first < HISTORY_SAMPLE:
                _history(lo, min(hi, first + HISTORY_SAMPLE - 1))
            if lo - first < CHAT_SAMPLE:
                _chat_chunk(lo, min(hi, first + CHAT_SAMPLE - 1), relations, joined, rng, now)
        _out(stdout, f"customers: {hi - first + 1}/{missing} added ({time.monotonic() - started:.0f}s)")

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            table = Customer._meta.db_table
            cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
        _analyze()
    taggings = Tagging.objects.filter(customer_id__gte=first).count() if missing <= 200_000 else None
    _out(
        stdout,
        f"customers: {missing} customers added with {n_followers} possible followers"
        + (f", {taggings} taggings" if taggings is not None else "")
        + f" in {time.monotonic() - started:.0f}s.",
    )
