"""The keyword rules' part of `seed_demo`: a tag 关注价格 (group 客户兴趣), three rules — one live
(价格/报价 → 关注价格, skipping 已成交 customers and messages saying 不需要), one testing on five sample
customers (保养 → 保养到期), one draft (试听 → 已约课) — then a month of chat through the real ingest
path (`messages_ingest`) and the real matcher, so the pages show real hits, tags and shadow hits;
and a back-test of the draft rule. Idempotent: run twice it adds nothing (rules by name, messages by
msgid)."""

from __future__ import annotations

import datetime as dt
import random

from django.db import transaction
from django.db.models import F, Min
from django.utils import timezone

from customers.models import Customer, FollowRelation, RelationStatus, TagEvent, Tagging, TagSource
from customers.services import messages_ingest
from org.actors import Actor
from tags.models import Tag, TagGroup
from tags.services import tag_create, tag_group_create

from .matching import messages_match_pending
from .models import HitOutcome, KeywordRule, RuleHit, RuleTagged
from .services import keyword_rule_create, rule_backtest_start

ACTOR = Actor(label="seed_demo")
DAYS = 30
MESSAGES = 600

INBOUND = [
    ("你好，想了解一下价格", 5), ("上次的报价还有效吗？", 4), ("价格能再优惠一点吗？", 4), ("报价单发我一下", 3),
    ("价格不需要了，已经买了", 2), ("车子该保养了，什么时候有空位？", 4), ("保养套餐包含哪些项目？", 3),
    ("孩子想来试听一节课", 3), ("试听课是周末吗？", 2), ("好的，收到", 6), ("我考虑一下", 4), ("谢谢", 4),
]
OUTBOUND = ["价格表已发您，请查收", "本周六上午可以安排保养", "试听课已为您预约，周日下午两点",
            "好的，我帮您申请一下优惠"]


def _out(stdout, text: str) -> None:
    if stdout is not None:
        stdout.write(text)


def _tag(group_name: str, name: str) -> Tag | None:
    return Tag.objects.filter(group__name=group_name, name=name).first()


def _price_tag() -> Tag:
    tag = Tag.objects.filter(name="关注价格").first()
    if tag is not None:
        return tag
    group = TagGroup.objects.filter(name="客户兴趣", parent=None).first() or tag_group_create(actor=ACTOR,
                                                                                            name="客户兴趣")
    return tag_create(actor=ACTOR, group=group, name="关注价格")


def _pairs() -> list[tuple[int, str, str]]:
    return list(FollowRelation.objects.filter(status=RelationStatus.ACTIVE).order_by("customer_id")
                .values_list("customer_id", "customer__external_userid", "employee__userid")[:400])


def _chat(rng: random.Random, now, pairs, samples: list[int]) -> int:
    """A month of chat between customers and their followers, posted like an archive puller would;
    the testing rule's sample customers each ask about 保养 once."""
    if not pairs:
        return 0
    words, weights = zip(*INBOUND, strict=True)
    items = []
    seen: set[int] = set()
    for customer_id, external, userid in pairs:
        if customer_id in samples and customer_id not in seen:
            seen.add(customer_id)
            sent = now - dt.timedelta(days=rng.random() * DAYS)
            items.append({"msgid": f"rules-demo-sample-{customer_id}", "external_userid": external,
                          "employee": userid, "direction": "in", "content": "保养套餐包含哪些项目？",
                          "sent_at": sent.isoformat()})
    for i in range(MESSAGES):
        _customer_id, external, userid = rng.choice(pairs)
        sent = now - dt.timedelta(days=rng.random() * DAYS)
        inbound = rng.random() < 0.75
        items.append({"msgid": f"rules-demo-{i:05d}", "external_userid": external, "employee": userid,
                      "direction": "in" if inbound else "out",
                      "content": rng.choices(words, weights)[0] if inbound else rng.choice(OUTBOUND),
                      "sent_at": sent.isoformat()})
    items.sort(key=lambda item: item["sent_at"])
    return messages_ingest(actor=ACTOR, messages=items).created


def _date_at_messages(since) -> int:
    """The month of chat was matched just now; a worker matches each message moments after it is
    archived. So date what matching wrote at its message's time: hits, the once-only records, the
    taggings and their audit (the 数据看板's tagging activity then shows a month, not one spike today).
    Returns the customers redated."""
    RuleHit.objects.filter(created_at__gte=since).update(created_at=F("sent_at"))
    first = (RuleHit.objects.filter(outcome=HitOutcome.TAGGED, created_at__lt=since).values("rule", "customer")
             .annotate(at=Min("sent_at")))
    n = 0
    for row in first:
        rule = KeywordRule.objects.get(pk=row["rule"])
        at, customer = row["at"], row["customer"]
        RuleTagged.objects.filter(rule=rule, customer_id=customer, tagged_at__gte=since).update(tagged_at=at)
        tags = list(rule.tags.values_list("pk", flat=True))
        Tagging.objects.filter(customer_id=customer, tag__in=tags, created_at__gte=since).update(created_at=at)
        TagEvent.objects.filter(customer_id=customer, source=TagSource.RULE, tag__in=tags,
                                created_at__gte=since).update(created_at=at)
        n += 1
    return n


def seed(*, stdout=None, seed: int = 42, **options) -> None:
    rng = random.Random(seed + 15)
    now = timezone.now()
    won, maintenance, booked = _tag("转化阶段", "已成交"), _tag("售后服务", "保养到期"), _tag("试听进度", "已约课")
    if won is None or maintenance is None or booked is None or not Customer.objects.exists():
        _out(stdout, "rules: the tags and customers demos are missing; no keyword rules created.")
        return
    made = 0
    pairs = _pairs()
    asking: list[int] = []
    with transaction.atomic():
        price = _price_tag()
        if not KeywordRule.objects.filter(name="价格关注").exists():
            keyword_rule_create(actor=ACTOR, data={
                "name": "价格关注", "keywords": ["价格", "报价", "多少钱", "优惠"], "tags": [price.pk],
                "exclude_tags": [won.pk], "exclude_keywords": ["不需要"], "status": "live"})
            made += 1
        if not KeywordRule.objects.filter(name="保养提醒").exists():
            holding = set(Tagging.objects.filter(tag=maintenance).values_list("customer_id", flat=True))
            asking = list(dict.fromkeys(c for c, _e, _u in pairs if c not in holding))[:5]
            keyword_rule_create(actor=ACTOR, data={
                "name": "保养提醒", "keywords": ["保养", "保养套餐"], "tags": [maintenance.pk],
                "min_hits": 1, "status": "testing", "sample_customers": asking})
            made += 1
        if not KeywordRule.objects.filter(name="试听意向").exists():
            keyword_rule_create(actor=ACTOR, data={
                "name": "试听意向", "keywords": ["试听", "试听课", "体验课"], "tags": [booked.pk],
                "exclude_keywords": ["不用了"], "status": "draft"})
            made += 1
    if not made:
        _out(stdout, "rules: keyword rules exist, none added.")
        return
    created = _chat(rng, now, pairs, asking)
    messages_match_pending()  # what the worker does after each ingest (already done inline when eager)
    _date_at_messages(now)
    draft = KeywordRule.objects.get(name="试听意向")
    rule_backtest_start(actor=ACTOR, rule=draft, since=(timezone.localdate() - dt.timedelta(days=DAYS)).isoformat(),
                        until=timezone.localdate().isoformat())
    rules = KeywordRule.objects.order_by("pk")
    figures = ", ".join(f"{r.name} ({r.get_status_display()}): {r.hit_count} hits, {r.tagged_count} tagged"
                        for r in rules)
    tagged = Tagging.objects.filter(tag__keyword_rules__isnull=False).count()
    _out(stdout, f"rules: {made} keyword rules, {created} chat messages ingested and matched; {figures}; "
                 f"{tagged} taggings; a back-test of 试听意向 queued.")
