"""Rule 15 gaps found in review: a message time Python cannot hold once read back as UTC was stored,
and then stopped keyword matching for every message queued with it."""

from __future__ import annotations

import pytest

from customers.models import Message, Tagging
from rules.models import PendingMessage

from .conftest import MESSAGES, message, post_messages, price_rule

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("sent_at", ["9999-12-31T23:59:59-10:00", "0001-01-01T00:00:00+10:00", "1900-01-01T00:00:00"])
def test_a_sent_at_out_of_range_is_400_and_matching_goes_on(world, sent_at):
    w = world
    price_rule(w)
    bad = message(w.customers[0], "价格多少", msgid="far", sent_at=sent_at)
    response = w.api.post(MESSAGES, {"messages": [bad]}, format="json")
    assert response.status_code == 400, response.content
    [detail] = response.json()["error"]["details"]
    assert "sent_at" in [e["field"] for e in detail["errors"]]
    assert not Message.objects.exists() and not PendingMessage.objects.exists()
    # the next customer's message is matched and tagged as usual
    post_messages(w, [message(w.customers[1], "报价发我", msgid="near")])
    assert Tagging.objects.filter(customer=w.customers[1], tag=w.price).exists()
