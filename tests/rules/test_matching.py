"""Rule 15 over HTTP (eager Celery: matching runs right after each ingest commits): a keyword in a
customer's message tags them once, exclusions hold, removed tags stay removed, test mode tags only
samples, outgoing messages don't count by default."""

from __future__ import annotations

import pytest

from customers.models import Message, TagEvent, Tagging, TagSource
from rules.models import HitOutcome, RuleHit

from .conftest import MESSAGES, RULES, message, post_messages, price_rule

pytestmark = pytest.mark.django_db(transaction=True)


def tags_of(customer) -> set[str]:
    return set(Tagging.objects.filter(customer=customer).values_list("tag__name", flat=True))


def test_a_keyword_in_a_customers_message_tags_them_audited_as_the_rule(world):
    w = world
    rule = price_rule(w)
    c = w.customers[0]
    assert post_messages(w, [message(c, "你好，想了解一下价格", msgid="m1")]) == \
        {"created": 1, "duplicates": 0, "skipped": 0}
    assert tags_of(c) == {"关注价格"}
    event = TagEvent.objects.get(customer=c, tag=w.price)
    assert event.source == TagSource.RULE and "价格关注" in event.actor_label and event.actor_employee is None
    hit = RuleHit.objects.get()
    assert (hit.outcome, hit.keyword, hit.customer_id) == (HitOutcome.TAGGED, "价格", c.pk)
    body = w.api.get(f"{RULES}{rule['id']}/").json()
    assert body["hit_count"] == 1 and body["tagged_count"] == 1
    hits = w.api.get(f"{RULES}{rule['id']}/hits/").json()["results"]
    assert hits[0]["msgid"] == "m1" and hits[0]["outcome"] == "tagged" and hits[0]["customer"] == c.pk


def test_full_width_and_case_are_folded_like_the_keywords(world):
    w = world
    price_rule(w, keywords=["VIP价格"])
    post_messages(w, [message(w.customers[0], "ｖｉｐ价格多少", msgid="m1")])
    assert tags_of(w.customers[0]) == {"关注价格"}


def test_an_outgoing_message_does_not_count_by_default(world):
    w = world
    price_rule(w)
    post_messages(w, [message(w.customers[0], "价格表已发您，请查收", msgid="m1", direction="out")])
    assert tags_of(w.customers[0]) == set()
    assert not RuleHit.objects.exists()


def test_outgoing_messages_count_when_the_rule_says_so(world):
    w = world
    price_rule(w, directions=["in", "out"])
    post_messages(w, [message(w.customers[0], "价格表已发您", msgid="m1", direction="out")])
    assert tags_of(w.customers[0]) == {"关注价格"}


def test_an_exclude_keyword_skips_the_message(world):
    w = world
    price_rule(w)
    post_messages(w, [message(w.customers[0], "价格不需要了，谢谢", msgid="m1")])
    assert tags_of(w.customers[0]) == set()
    hit = RuleHit.objects.get()
    assert hit.outcome == HitOutcome.EXCLUDED and hit.reason == "keyword:不需要"


def test_an_exclude_tag_skips_the_customer(world):
    w = world
    rule = price_rule(w)
    c = w.customers[0]
    Tagging.objects.create(customer=c, tag=w.won)
    post_messages(w, [message(c, "续费的价格是多少", msgid="m1")])
    assert tags_of(c) == {"已成交"}
    hits = w.api.get(f"{RULES}{rule['id']}/hits/?outcome=excluded").json()["results"]
    assert [(h["outcome"], h["reason"]) for h in hits] == [("excluded", "tag:已成交")]


def test_a_removed_tag_is_never_put_back_by_the_rule(world):
    w = world
    price_rule(w)
    c = w.customers[0]
    post_messages(w, [message(c, "价格多少", msgid="m1")])
    assert tags_of(c) == {"关注价格"}
    response = w.api.post(f"/api/v1/customers/{c.pk}/tags/", {"remove": [w.price.pk]}, format="json")
    assert response.status_code == 200
    post_messages(w, [message(c, "报价单发我一下", msgid="m2", sent_at="2026-11-21T10:00:00+08:00")])
    assert tags_of(c) == set()
    assert list(RuleHit.objects.order_by("id").values_list("outcome", flat=True)) == ["tagged", "already"]


def test_a_customer_already_holding_the_tag_is_logged_already(world):
    w = world
    price_rule(w)
    c = w.customers[0]
    Tagging.objects.create(customer=c, tag=w.price)
    post_messages(w, [message(c, "价格多少", msgid="m1")])
    assert RuleHit.objects.get().outcome == HitOutcome.ALREADY
    assert not TagEvent.objects.filter(source=TagSource.RULE).exists()


def test_testing_mode_tags_only_sample_customers_and_logs_shadow_hits(world):
    w = world
    sample, others = w.customers[0], w.customers[1:4]
    rule = price_rule(w, status="testing", sample_customers=[sample.pk])
    post_messages(w, [message(c, "价格多少", msgid=f"m{i}") for i, c in enumerate([sample, *others])])
    assert tags_of(sample) == {"关注价格"}
    assert all(tags_of(c) == set() for c in others)
    outcomes = dict(RuleHit.objects.values_list("customer_id", "outcome"))
    assert outcomes[sample.pk] == "tagged" and {outcomes[c.pk] for c in others} == {"shadow"}
    figures = w.api.get(f"{RULES}{rule['id']}/").json()["figures"]
    assert figures["shadow_customers"] == 3 and figures["sample_customers_tagged"] == 1


def test_min_hits_within_window(world):
    w = world
    price_rule(w, min_hits=2, window_days=7)
    a, b = w.customers[0], w.customers[1]
    post_messages(w, [message(a, "价格?", msgid="a1", sent_at="2026-11-01T10:00:00+08:00"),
                      message(b, "价格?", msgid="b1", sent_at="2026-11-01T10:00:00+08:00")])
    assert tags_of(a) == tags_of(b) == set()
    post_messages(w, [message(a, "报价呢", msgid="a2", sent_at="2026-11-05T10:00:00+08:00"),
                      message(b, "报价呢", msgid="b2", sent_at="2026-11-20T10:00:00+08:00")])
    assert tags_of(a) == {"关注价格"}
    assert tags_of(b) == set()  # 19 days apart: outside the 7-day window


def test_rule_scoped_to_employees_covers_only_their_customers(world):
    w = world
    price_rule(w, employees=["wangfang"])
    post_messages(w, [message(w.customers[0], "价格", msgid="m1"),
                      message(w.other, "价格", msgid="m2", employee="wangfang")])
    assert tags_of(w.customers[0]) == set() and tags_of(w.other) == {"关注价格"}


def test_single_choice_is_respected_and_locked_groups_allowed(world):
    w = world
    c = w.customers[0]
    Tagging.objects.create(customer=c, tag=w.hot)
    price_rule(w, tags=[w.won.pk, w.key_account.pk], exclude_tags=[])
    post_messages(w, [message(c, "价格合适就签", msgid="m1")])
    assert tags_of(c) == {"已成交", "重点客户"}  # 高意向 removed (single-choice), locked 重点客户 added


def test_draft_and_paused_rules_do_not_match(world):
    w = world
    price_rule(w, status="draft")
    rule = price_rule(w, status="paused")
    post_messages(w, [message(w.customers[0], "价格", msgid="m1")])
    assert tags_of(w.customers[0]) == set()
    w.api.patch(f"{RULES}{rule['id']}/", {"status": "live"}, format="json")
    post_messages(w, [message(w.customers[0], "价格", msgid="m2")])
    assert tags_of(w.customers[0]) == {"关注价格"}


def test_try_it_box_reports_matches_and_stores_nothing(world):
    w = world
    rule = price_rule(w)
    response = w.api.post(f"{RULES}test/", {"content": "ＶＩＰ的报价不需要了"}, format="json")
    assert response.status_code == 200
    [match] = response.json()["matches"]
    assert match["rule"] == rule["id"] and match["keywords"] == ["报价"] and match["excluded_by"] == ["不需要"]
    assert match["spans"] == [[4, 6]]  # 报价 in the original text
    draft = w.api.post(f"{RULES}test/", {"content": "保养什么时候", "keywords": ["保养"]}, format="json").json()
    assert draft["matches"][0]["rule"] is None and draft["matches"][0]["keywords"] == ["保养"]
    assert not RuleHit.objects.exists() and not Message.objects.exists()


def test_try_it_while_editing_lists_the_edited_rule_once_with_its_new_keywords(world):
    w = world
    rule = price_rule(w)
    body = {"content": "报价多少？保养呢", "keywords": ["保养"], "exclude_keywords": [], "name": "价格关注（改）",
            "rule": rule["id"]}
    [match] = w.api.post(f"{RULES}test/", body, format="json").json()["matches"]
    assert (match["rule"], match["name"], match["status"], match["draft"]) == \
        (rule["id"], "价格关注（改）", "live", True)
    assert match["keywords"] == ["保养"]  # the saved keywords (价格, 报价) no longer count: the edit stands in
    # without `rule` the saved rule and the draft are two entries (a new rule beside the saved ones)
    del body["rule"]
    both = w.api.post(f"{RULES}test/", body, format="json").json()["matches"]
    assert [(m["rule"], m["keywords"]) for m in both] == [(None, ["保养"]), (rule["id"], ["报价"])]
    for bad, code in (("x", 400), (True, 400), (2**70, 400), (rule["id"] + 999, 404)):
        response = w.api.post(f"{RULES}test/", {**body, "rule": bad}, format="json")
        assert response.status_code == code, (bad, response.content)
        assert "rule" in response.json()["error"]["details"]


def test_message_history_endpoint_still_lists_ingested_messages(world):
    w = world
    c = w.customers[0]
    post_messages(w, [message(c, "你好", msgid="m1")])
    body = w.api.get(f"/api/v1/customers/{c.pk}/messages/").json()
    assert [(m["msgid"], m["employee"], m["direction"], m["content"]) for m in body["results"]] == \
        [("m1", "zhangwei", "in", "你好")]
    assert w.api.post(MESSAGES, {"messages": []}, format="json").json()["created"] == 0
