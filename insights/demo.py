"""The 数据看板's part of `seed_demo`: recent motion so every chart shows something believable.

The customers demo spreads its customers over two years; a dashboard looks at the last weeks. This
part adds, once (its first chat message marks it done), without adding customers:
- customers who added an employee over the last 60 days (through `customer_upsert`, with the add
  time and a channel `state`), half of them tagged by the channel code (`customer_tags_update`);
- relations ended over the last 90 days (through `follow_relation_end`: lost / deleted), mostly of
  customers who keep another follower, so managers still see them;
- an audit history spread over the last 60 days from every source (manual, bulk, api, channel,
  rule, transfer, wecom, import), and notes and chat messages on those days;
then refreshes the aggregates so the charts are drawn at once.
"""

from __future__ import annotations

import datetime as dt
import random

from django.db import transaction
from django.db.models import Count, Exists, F, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from customers.demo import employee_teams, state_for
from customers.models import Customer, FollowRelation, Message, Note, RelationStatus, TagEvent, Tagging, TagSource
from customers.services import customer_tags_update, customer_upsert, follow_relation_end
from org.actors import Actor
from org.models import Employee, EmployeeStatus, Role
from tags.models import Tag, TagGroup
from tags.services import tag_create, tag_group_create

from .services import aggregates_refresh

DEMO_ACTOR = Actor(label="seed_demo:insights")
STATES = ["", "", "spring2026", "expo_bj", "wechat_ad", "store_qr"]
SOURCE_WEIGHTS = [
    (TagSource.MANUAL, 30), (TagSource.BULK, 15), (TagSource.API, 10), (TagSource.CHANNEL, 12),
    (TagSource.RULE, 12), (TagSource.TRANSFER, 4), (TagSource.WECOM, 10), (TagSource.IMPORT, 4),
]
NOTES = ["电话回访，客户有意向", "已发报价单", "客户约下周到店", "试听课已安排", "提醒保养到期"]
MESSAGES = ["你好，想了解一下价格", "这周末有空吗？", "好的，谢谢", "保养要多久？", "已收到报价"]


def _out(stdout, message: str) -> None:
    if stdout is not None:
        stdout.write(message)


def _at(now: dt.datetime, rng: random.Random, days: int) -> dt.datetime:
    """A moment in the last `days` days, in working hours (local time)."""
    day = timezone.localdate(now) - dt.timedelta(days=rng.randint(0, days - 1))
    moment = timezone.make_aware(dt.datetime.combine(day, dt.time(rng.randint(9, 20), rng.randint(0, 59))))
    return min(moment, now)


def _front_staff() -> list[Employee]:
    return list(
        Employee.objects.filter(groups__name__in=[Role.STAFF, Role.MANAGER], status=EmployeeStatus.ACTIVE,
                                is_superuser=False).distinct().order_by("pk")
    )


def _new_relations(rng, now, staff, stdout) -> int:
    """Customers who added one of our employees over the last 60 days (a new follow relation through
    `customer_upsert`, with its add time and channel `state`); about half of them got a channel
    code's preset tags then. Existing customers are used: `--customers N` stays N."""
    if not staff:
        return 0
    tags = list(Tag.objects.filter(group__single_choice=False, group__locked=False).values_list("pk", flat=True))
    top = Customer.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    picked = Customer.objects.filter(pk__in=rng.sample(range(1, top + 1), k=min(top, 160)))
    teams = employee_teams()
    n = 0
    for customer in picked.prefetch_related("follow_relations")[:120]:
        following = {r.employee_id for r in customer.follow_relations.all()}
        choices = [e for e in staff if e.pk not in following]
        if not choices:
            continue
        added = _at(now, rng, 60)
        employee = rng.choice(choices)
        state = state_for(rng.choice(STATES), teams[employee.pk])  # a code's state only for its own team
        customer_upsert(actor=DEMO_ACTOR, data={"external_userid": customer.external_userid, "followers": [
            {"employee": employee.userid, "added_at": added.isoformat(), "state": state, "add_way": 1},
        ]})
        # a real code's state fires its trigger now: its tags are dated at the add too
        TagEvent.objects.filter(customer=customer, source=TagSource.CHANNEL, created_at__gte=now).update(
            created_at=added)
        if tags and rng.random() < 0.5:  # a channel code's preset tags, applied when the customer added
            chosen = rng.sample(tags, k=min(len(tags), rng.randint(1, 2)))
            change = customer_tags_update(actor=DEMO_ACTOR, customer=customer, add=chosen, source=TagSource.CHANNEL)
            if change.added:
                TagEvent.objects.filter(customer=customer, actor_label=DEMO_ACTOR.label).update(created_at=added)
        n += 1
    _out(stdout, f"insights: {n} customers added an employee over the last 60 days.")
    return n


def _ended_relations(rng, now, stdout) -> int:
    if FollowRelation.objects.filter(status__in=[RelationStatus.LOST, RelationStatus.DELETED]).count() >= 20:
        return 0
    shared = list(
        FollowRelation.objects.filter(status=RelationStatus.ACTIVE)
        .values("customer_id").annotate(n=Count("pk")).filter(n__gte=2).values_list("customer_id", flat=True)[:400]
    )
    candidates = list(
        FollowRelation.objects.filter(customer_id__in=shared, status=RelationStatus.ACTIVE,
                                      employee__status=EmployeeStatus.ACTIVE).order_by("pk")
    )
    rng.shuffle(candidates)
    ended, seen = 0, set()
    for rel in candidates:
        if rel.customer_id in seen:
            continue  # keep one follower: the customer stays visible to that follower's manager
        seen.add(rel.customer_id)
        status = RelationStatus.LOST if rng.random() < 0.7 else RelationStatus.DELETED
        follow_relation_end(actor=DEMO_ACTOR, customer=rel.customer_id, employee=rel.employee,
                            status=status, ended_at=_at(now, rng, 90))
        ended += 1
        if ended >= 45:
            break
    _out(stdout, f"insights: {ended} follow relations ended over the last 90 days.")
    return ended


def _history(rng, now, stdout) -> int:
    """Past tag changes of the current taggings (so the audit agrees with the tags), plus add/remove
    pairs, spread over 60 days; notes and messages on the same days."""
    sources = [s for s, w in SOURCE_WEIGHTS for _ in range(w)]
    top = Customer.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    sample = rng.sample(range(1, top + 1), k=min(top, 400))
    # Not the taggings a rule, a channel code or a job audited: they keep that history (a later seeded
    # "add" would make the rule's undo spare them as re-added by someone else).
    audited = TagEvent.objects.filter(customer_id=OuterRef("customer_id"), tag_id=OuterRef("tag_id")).exclude(
        actor_label__startswith="seed_demo")
    pairs = list(Tagging.objects.filter(customer_id__in=sample).exclude(Exists(audited))
                 .values_list("customer_id", "tag_id", "tag__name")[:900])
    events = []
    for customer_id, tag_id, name in pairs:
        when = _at(now, rng, 60)
        source = rng.choice(sources)
        if rng.random() < 0.25:  # added, removed, added again: a change of mind
            events.append(TagEvent(customer_id=customer_id, tag_id=tag_id, tag_name=name, action="remove",
                                   source=source, actor_label="seed_demo",
                                   created_at=when - dt.timedelta(hours=rng.randint(1, 48))))
        events.append(TagEvent(customer_id=customer_id, tag_id=tag_id, tag_name=name, action="add", source=source,
                               actor_label="seed_demo", created_at=when))
    TagEvent.objects.bulk_create(events, batch_size=1000)
    # relations older than the 60 days: nobody writes about a customer before the customer added them
    relations = list(FollowRelation.objects.filter(status=RelationStatus.ACTIVE, added_at__lt=now - dt.timedelta(
        days=60)).values_list("customer_id", "employee_id")[:2000])
    rng.shuffle(relations)
    Note.objects.bulk_create([
        Note(customer_id=c, author_id=e, text=rng.choice(NOTES), created_at=_at(now, rng, 60))
        for c, e in relations[:300]
    ], batch_size=1000)
    Message.objects.bulk_create([
        Message(msgid=f"insights-demo-{i}", customer_id=c, employee_id=e, direction=rng.choice(["in", "out"]),
                content=rng.choice(MESSAGES), sent_at=_at(now, rng, 60))
        for i, (c, e) in enumerate(relations[:900])
    ], batch_size=1000, ignore_conflicts=True)
    _out(stdout, f"insights: {len(events)} tag changes, notes and messages spread over the last 60 days.")
    return len(events)


def _spread_seed_history(now, stdout) -> int:
    """The customers demo stamps its single-choice taggings (and their audit rows) with the seeding
    time: date those audit rows back to when their customer arrived, as the other seeded ones are,
    so "每日标签变更" does not show one enormous day (small demos only; history, not tags)."""
    recent = TagEvent.objects.filter(actor_label="seed_demo", created_at__gte=now - dt.timedelta(hours=6),
                                     customer__created_at__lt=now - dt.timedelta(days=1))
    if Customer.objects.count() > 20_000:
        return 0
    n = recent.update(created_at=Subquery(Customer.objects.filter(pk=OuterRef("customer_id")).values("created_at")))
    # The channel codes' demo applies its codes' tags now to customers who added weeks ago: a channel
    # code tags a customer when they add, so date those rows at the add through a code (a `state`).
    added_through_code = (FollowRelation.objects.filter(customer_id=OuterRef("customer_id")).exclude(state="")
                          .order_by("-added_at").values("added_at")[:1])
    n += TagEvent.objects.filter(source=TagSource.CHANNEL, created_at__gte=now - dt.timedelta(hours=6)).update(
        created_at=Coalesce(Subquery(added_through_code), F("created_at")))
    if n:
        _out(stdout, f"insights: {n} seeded audit rows dated back to their customers' arrival.")
    return n


OLD_CAMPAIGN_GROUP = "往期活动"
OLD_CAMPAIGN_TAGS = ["2025双十一", "2025春节礼包", "旧版会员卡"]


def _old_campaign_tags(rng, now, stdout) -> int:
    """Tags last used months ago: what "90 天未使用的标签" lists as clean-up candidates."""
    if TagGroup.objects.filter(name=OLD_CAMPAIGN_GROUP, parent=None).exists():
        return 0
    group = tag_group_create(actor=DEMO_ACTOR, name=OLD_CAMPAIGN_GROUP)
    top = Customer.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    n = 0
    for name in OLD_CAMPAIGN_TAGS:
        tag = tag_create(actor=DEMO_ACTOR, group=group, name=name)
        for customer_id in rng.sample(range(1, top + 1), k=min(top, 12)):
            if not Customer.objects.filter(pk=customer_id).exists():
                continue
            customer_tags_update(actor=DEMO_ACTOR, customer=customer_id, add=[tag.pk], source=TagSource.IMPORT)
            when = now - dt.timedelta(days=rng.randint(120, 300), hours=rng.randint(0, 8))
            TagEvent.objects.filter(customer_id=customer_id, tag=tag).update(created_at=when)
            n += 1
    _out(stdout, f"insights: {len(OLD_CAMPAIGN_TAGS)} old campaign tags on {n} customers, last used months ago.")
    return n


def seed_insights_demo(*, stdout=None, seed: int = 42, **options) -> None:
    rng = random.Random(seed + 12)
    now = timezone.now()
    with transaction.atomic():
        if not Message.objects.filter(msgid="insights-demo-0").exists():  # once (its history's first message)
            _spread_seed_history(now, stdout)
            _new_relations(rng, now, _front_staff(), stdout)
            _ended_relations(rng, now, stdout)
            _history(rng, now, stdout)
            _old_campaign_tags(rng, now, stdout)
    snapshot = aggregates_refresh()
    _out(stdout, f"insights: aggregates refreshed ({snapshot.customers} customers, {snapshot.seconds:.1f}s).")
