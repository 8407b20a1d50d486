"""The 智能标签 pages for tag admins and enterprise admins (Django test client)."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.urls import reverse
from django.utils import timezone

from customers.models import Job
from rules.models import KeywordRule
from tests.conftest import login

from .conftest import message, post_messages, price_rule

pytestmark = pytest.mark.django_db(transaction=True)


def test_menu_link_for_tag_admins_only(world):
    w = world
    assert "智能标签" in login(w.tag_admin).get(reverse("admin:index")).content.decode()
    assert "智能标签" not in login(w.zhang).get(reverse("admin:index")).content.decode()
    assert login(w.zhang).get(reverse("admin:rules_keywordrule_changelist")).status_code in (302, 403, 404)


def test_list_shows_status_hits_and_tagged_counts(world):
    w = world
    price_rule(w)
    post_messages(w, [message(w.customers[0], "价格", msgid="m1")])
    page = login(w.tag_admin).get(reverse("admin:rules_keywordrule_changelist")).content.decode()
    assert "价格关注" in page and "已启用" in page
    assert '<b class="tp-hits">1</b>' in page and '<b class="tp-tagged">1</b>' in page


def test_editor_creates_a_rule_through_the_service_and_shows_errors(world):
    w = world
    client = login(w.tag_admin)
    url = reverse("admin:rules_keywordrule_add")
    assert client.get(url).status_code == 200
    bad = client.post(url, {"name": "价格", "keywords": "[]", "exclude_keywords": "[]", "tags": [w.price.pk],
                            "directions": ["in"], "min_hits": 1, "status": "live", "sample_customers": "[]"})
    assert bad.status_code == 200 and "至少需要一个关键词" in bad.content.decode()
    assert not KeywordRule.objects.exists()
    good = client.post(url, {"name": "价格", "keywords": json.dumps(["价格", "报价"]), "exclude_keywords": '["不需要"]',
                             "tags": [w.price.pk], "exclude_tags": [w.won.pk], "directions": ["in"], "min_hits": 1,
                             "status": "testing", "sample_customers": json.dumps([w.customers[0].pk])})
    rule = KeywordRule.objects.get()
    assert good.status_code == 302 and good["Location"].endswith(f"/{rule.pk}/change/")
    assert rule.keywords == ["价格", "报价"] and rule.status == "testing"
    assert list(rule.sample_customers.values_list("pk", flat=True)) == [w.customers[0].pk]


def test_rule_page_shows_test_mode_figures_and_the_hit_log_by_outcome(world):
    w = world
    rule = price_rule(w, status="testing", sample_customers=[w.customers[0].pk])
    post_messages(w, [message(c, "价格多少", msgid=f"m{i}") for i, c in enumerate(w.customers[:4])])
    client = login(w.tag_admin)
    url = reverse("admin:rules_keywordrule_change", args=[rule["id"]])
    page = client.get(url).content.decode()
    assert "如果启用，将为 3 位客户打标签；已为 1 位样本客户打标签" in page
    assert "tp-rule-hits-per-day" in page and "<mark>价格</mark>" in page
    shadow = client.get(url + "?outcome=shadow").content.decode()
    assert shadow.count('data-outcome="shadow"') >= 3 and 'tr data-outcome="tagged"' not in shadow


def test_backtest_and_undo_buttons_start_jobs_and_open_the_job_page(world):
    w = world
    rule = price_rule(w)
    post_messages(w, [message(w.customers[0], "价格", msgid="m1")])
    client = login(w.tag_admin)
    response = client.post(reverse("admin:rules_keywordrule_backtest", args=[rule["id"]]),
                           {"since": "2026-11-01", "until": "2026-11-30"})
    job = Job.objects.get(kind="rule_backtest")
    assert response["Location"] == reverse("admin:customers_job_change", args=[job.pk])
    job_page = client.get(response["Location"]).content.decode()
    assert "查看回测结果" in job_page
    result = client.get(reverse("admin:rules_keywordrule_backtest_result", args=[job.pk])).content.decode()
    assert 'id="tp-bt-customers">1<' in result and "<mark>价格</mark>" in result
    response = client.post(reverse("admin:rules_keywordrule_undo", args=[rule["id"]]), {"since": ""})
    undo = Job.objects.get(kind="rule_undo")
    assert response["Location"] == reverse("admin:customers_job_change", args=[undo.pk])
    assert undo.status == "succeeded" and undo.counts["removed"] == 1


def test_backtest_form_offers_the_last_30_days_and_names_a_bad_date_in_chinese(world):
    w = world
    rule = price_rule(w)
    client = login(w.tag_admin)
    page = client.get(reverse("admin:rules_keywordrule_change", args=[rule["id"]])).content.decode()
    today = timezone.localdate()
    assert f'name="since" value="{(today - dt.timedelta(days=30)).isoformat()}"' in page
    assert f'name="until" value="{today.isoformat()}"' in page
    response = client.post(reverse("admin:rules_keywordrule_backtest", args=[rule["id"]]),
                           {"since": "2026-12-01", "until": "2026-11-01"}, follow=True)
    text = response.content.decode()
    assert "结束日期：结束日期不能早于开始日期。" in text
    assert "until:" not in text.lower()
    assert not Job.objects.filter(kind="rule_backtest").exists()
