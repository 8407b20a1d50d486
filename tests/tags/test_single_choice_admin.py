"""Rule 7 (单选) in the taxonomy admin: turning single-choice on, moving a tag into a single-choice
group and merging into one are refused with a message naming how many customers clash, and
nothing changes (no 500)."""

from __future__ import annotations

import pytest

from customers.models import Customer, TagEvent, Tagging
from tags.models import Tag, TagGroup
from tests.conftest import login
from tests.factories import make_tag_group

pytestmark = pytest.mark.django_db


@pytest.fixture
def clash(db):
    level, (vip, plain) = make_tag_group("客户等级", tags=["VIP客户", "普通客户"])
    stage, (hot, won) = make_tag_group("转化阶段", single_choice=True, tags=["高意向", "已成交"])
    c1, c2 = (Customer.objects.create(external_userid=f"wm{i}", name=f"c{i}") for i in range(2))
    Tagging.objects.bulk_create([Tagging(customer=c1, tag=vip), Tagging(customer=c1, tag=plain),
                                 Tagging(customer=c1, tag=hot), Tagging(customer=c2, tag=vip)])
    return type("C", (), dict(level=level, stage=stage, vip=vip, plain=plain, hot=hot, won=won, c1=c1, c2=c2))


def state():
    return (sorted(Tagging.objects.values_list("customer_id", "tag_id")),
            sorted(Tag.objects.values_list("pk", "group_id")),
            sorted(TagGroup.objects.values_list("pk", "single_choice")), TagEvent.objects.count())


def test_single_choice_checkbox_is_a_form_error_while_customers_hold_two(tag_admin, clash):
    before = state()
    data = {"name": "客户等级", "single_choice": "on", "tags-TOTAL_FORMS": "0", "tags-INITIAL_FORMS": "0",
            "tags-MIN_NUM_FORMS": "0", "tags-MAX_NUM_FORMS": "1000"}
    r = login(tag_admin).post(f"/tags/taggroup/{clash.level.pk}/change/", data)
    assert r.status_code == 200
    assert "1 位客户" in r.content.decode() and "errorlist" in r.content.decode()
    assert state() == before


def test_moving_a_tag_into_a_single_choice_group_is_a_form_error(tag_admin, clash):
    before = state()
    r = login(tag_admin).post(f"/tags/tag/{clash.vip.pk}/change/",
                              {"group": clash.stage.pk, "name": "VIP客户", "order": "0"})
    assert r.status_code == 200
    assert "1 位客户" in r.content.decode()
    assert state() == before


def test_merge_action_into_a_single_choice_group_is_refused_all_or_nothing(tag_admin, clash):
    before = state()
    r = login(tag_admin).post("/tags/tag/", {"action": "merge_tags", "_selected_action": [clash.plain.pk, clash.vip.pk],
                                             "apply": "1", "target": clash.won.pk}, follow=True)
    assert "1 位客户" in r.content.decode()
    assert state() == before
