"""Automation's audit labels are shown in the reader's language: each app registers the labels its
services write (a channel code's, a rule's, a transfer's, WeCom's, the system's), and a label nobody
registered is shown as stored. The labels come from the real writers, so a writer that changes its
format without its registration fails here."""

from __future__ import annotations

import pytest
from django.utils import translation

from channels.models import ChannelCode
from channels.services import code_actor
from customers.models import Transfer
from customers.transfers import _actor_fields
from org.actors import SYSTEM, actor_label_display
from rules.models import KeywordRule
from wecom.mapping import WECOM_ACTOR

CASES = [
    (SYSTEM.label, "系统", "System"),
    ("seed_demo:insights", "演示数据", "Demo data"),
    (_actor_fields(Transfer(pk=12))["actor_label"], "客户继承 #12", "Customer transfer #12"),
    (code_actor(ChannelCode(pk=3, name="车展")).label, "渠道活码「车展」", "Channel code “车展”"),
    ("渠道活码落地页「车展」", "渠道活码落地页「车展」", "Channel code landing page “车展”"),
    (KeywordRule(pk=7, name="价格关注").actor_label, "智能标签「价格关注」", "Keyword rule “价格关注”"),
    (WECOM_ACTOR.label, "企业微信", "WeCom"),
    ("wecom_sync", "企业微信同步", "WeCom sync"),
    ("CRM nightly import", "CRM nightly import", "CRM nightly import"),
]


@pytest.mark.parametrize(("label", "zh", "en"), CASES)
def test_labels_read_in_the_readers_language(label, zh, en):
    with translation.override("zh-hans"):
        assert actor_label_display(label) == zh
    with translation.override("en"):
        assert actor_label_display(label) == en
