"""`seed_demo`'s keyword-rule part: three rules (live, testing with samples, draft) with real hits from a
month of chat ingested and matched the real way; run twice it adds nothing."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.management import call_command
from django.db.models import F
from django.utils import timezone

from customers.models import Job, Message, TagEvent, TagSource
from rules.models import KeywordRule, RuleHit
from rules.selectors import rule_figures

pytestmark = pytest.mark.django_db(transaction=True)


def test_seed_gives_three_rules_with_real_numbers(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    call_command("seed_demo", customers=300)
    rules = {r.name: r for r in KeywordRule.objects.all()}
    assert {r.status for r in rules.values()} == {"live", "testing", "draft"}
    live, testing, draft = rules["价格关注"], rules["保养提醒"], rules["试听意向"]
    assert live.hit_count > 0 and live.tagged_count > 0
    assert live.hit_count == RuleHit.objects.filter(rule=live).count()
    assert RuleHit.objects.filter(rule=live, outcome="excluded").exists()  # 不需要 / 已成交
    figures = rule_figures(testing)
    assert figures["shadow_customers"] > 0 and figures["sample_customers_tagged"] == testing.sample_customers.count()
    assert draft.hit_count == 0
    assert TagEvent.objects.filter(source=TagSource.RULE, actor_label__contains="价格关注").count() == live.tagged_count
    assert Job.objects.filter(kind="rule_backtest", status="succeeded").exists()
    # Dated at their messages, as a worker matching the archive as it comes would have: a month of
    # rule tagging on the 数据看板, not one spike on the seeding day.
    events = TagEvent.objects.filter(source=TagSource.RULE, action="add")
    days = {timezone.localdate(t) for t in events.values_list("created_at", flat=True)}
    assert len(days) >= 15, sorted(days)
    recent = events.filter(created_at__gte=timezone.now() - dt.timedelta(hours=24)).count()
    assert recent <= events.count() // 5, (recent, events.count())
    tagged = RuleHit.objects.filter(rule=live, outcome="tagged")
    assert not tagged.exclude(created_at=F("sent_at")).exists()

    before = (Message.objects.count(), RuleHit.objects.count())
    call_command("seed_demo", customers=300)
    assert (Message.objects.count(), RuleHit.objects.count()) == before
