"""`seed_demo`'s spread-out audit history never contradicts the automation's own audit: a tag a keyword
rule or a channel code put on a customer has no later seeded "add" by someone else, so undoing the rule
in the demo removes what it added instead of sparing everything as re-added by others."""

from __future__ import annotations

import re

import pytest
from django.core.management import call_command
from django.db.models import Exists, OuterRef

from customers.models import TagEvent, TagSource

pytestmark = pytest.mark.django_db(transaction=True)


def test_automation_tags_have_no_later_seeded_add(settings, capsys):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    call_command("seed_demo", customers=300)
    out = capsys.readouterr().out
    spread = re.search(r"insights: (\d+) tag changes", out)
    assert spread and int(spread.group(1)) > 300, out  # the dashboard still has history
    automation = TagEvent.objects.filter(action="add", source__in=[TagSource.RULE, TagSource.CHANNEL]).exclude(
        actor_label__startswith="seed_demo")
    assert automation.exists()
    later_seeded = TagEvent.objects.filter(customer_id=OuterRef("customer_id"), tag_id=OuterRef("tag_id"),
                                           actor_label__startswith="seed_demo", pk__gt=OuterRef("pk"))
    contradicted = automation.filter(Exists(later_seeded))
    assert contradicted.count() == 0, list(contradicted.values_list("actor_label", "customer_id")[:5])
