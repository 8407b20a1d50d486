"""Rule 17, outbound, found in review: order per customer must hold when a given-up item is retried
from the status page after a later change of the same tag has reached WeCom."""

from __future__ import annotations

import pytest

from customers.models import TagSource
from customers.services import customer_tags_update
from tests.wecom.sync_world import ADMIN, customer, employee, push, taxonomy, wecom_tags
from wecom import outbox
from wecom.models import OutboxItem


@pytest.fixture
def world(db, wecom_fake, settings):
    settings.WECOM_OUTBOX_RETRY_SECONDS = 0
    zhang = employee(wecom_fake, "zhangwei")
    t = taxonomy()
    push()
    wecom_fake.clear_calls()
    return {"sim": wecom_fake, "zhang": zhang, **t}


def test_retrying_a_given_up_item_never_undoes_a_later_change_of_the_same_tag(world):
    sim, zhang, vip, parts = world["sim"], world["zhang"], world["vip"], world["parts"]
    c = customer(sim, "wmORDER1", zhang)
    customer_tags_update(actor=ADMIN, customer=c, add=[vip.pk], source=TagSource.API)
    push()
    vip.refresh_from_db()
    parts.refresh_from_db()
    assert wecom_tags(sim, "wmORDER1", "zhangwei") == {vip.external_id}

    # WeCom refuses every call for a while: "remove VIP" (and "add 汽车零部件") is given up …
    sim.fail("externalcontact/mark_tag", 60020, times=outbox.MAX_ATTEMPTS)
    customer_tags_update(actor=ADMIN, customer=c, remove=[vip.pk], add=[parts.pk], source=TagSource.API)
    push()
    failed = OutboxItem.objects.get(customer=c, status="failed")
    # … then someone puts VIP back; that change reaches WeCom
    customer_tags_update(actor=ADMIN, customer=c, add=[vip.pk], source=TagSource.API)
    push()
    assert vip.external_id in wecom_tags(sim, "wmORDER1", "zhangwei")

    # 重试 on the status page: the old "remove VIP" must not be sent after the newer "add VIP";
    # what was not superseded (汽车零部件) still reaches WeCom.
    outbox.outbox_retry_failed()
    push()
    assert wecom_tags(sim, "wmORDER1", "zhangwei") == {vip.external_id, parts.external_id}
    failed.refresh_from_db()
    assert failed.status == "done"
