"""Rule 14, the trigger: a new follow relation with an enabled code's state gets the code's tags once
(source channel, actor the code), locked groups included, single-choice respected."""

from __future__ import annotations

import pytest

from channels.models import ChannelAdd
from channels.selectors import code_stats, parse_range
from customers.models import FollowRelation, RelationStatus, TagEvent, Tagging
from customers.services import customer_upsert, follow_relation_end
from tests.channels.conftest import ENTERPRISE, add_through, make_code

pytestmark = pytest.mark.django_db


def tag_ids(customer) -> set[int]:
    return set(Tagging.objects.filter(customer=customer).values_list("tag_id", flat=True))


def test_new_relation_with_the_state_gets_the_tags_once_audited_as_the_code(world, crm):
    w = world
    code = make_code(name="车展", state="expo_bj", employees=[w.staff], tags=[w.vip, w.hot])
    body = {"external_userid": "wmEXPO1", "name": "王先生", "followers": [{"employee": "zhangsan", "state": "expo_bj"}]}
    assert crm.post("/api/v1/customers/", body, format="json").status_code == 201
    customer = w.staff.follow_relations.get(customer__external_userid="wmEXPO1").customer
    assert tag_ids(customer) == {w.vip.pk, w.hot.pk}
    events = TagEvent.objects.filter(customer=customer)
    assert sorted((e.tag_id, e.action, e.source) for e in events) == sorted(
        [(w.vip.pk, "add", "channel"), (w.hot.pk, "add", "channel")])
    assert all(f"#{code.pk}" in e.actor_label and "车展" in e.actor_label for e in events)
    assert all(e.actor_employee_id is None and e.actor_client_id is None for e in events)

    # Re-posting the same relation (the CRM syncs again) applies nothing, counts nothing.
    Tagging.objects.filter(customer=customer, tag=w.hot).delete()  # someone removed 高意向 meanwhile
    assert crm.post("/api/v1/customers/", body, format="json").status_code == 200
    assert tag_ids(customer) == {w.vip.pk}
    assert TagEvent.objects.filter(customer=customer).count() == 2
    assert ChannelAdd.objects.filter(code=code).count() == 1
    assert crm.get(f"/api/v1/channel-codes/{code.pk}/").json()["added_count"] == 1


def test_locked_group_does_not_stop_the_code(world):
    w = world
    make_code(state="vip_day", employees=[w.staff], tags=[w.key_account])
    customer = add_through("vip_day", w.staff, "wmLOCK1")  # added by a staff member's own CRM sync
    assert tag_ids(customer) == {w.key_account.pk}


def test_locked_group_does_not_stop_the_code_when_staff_post_the_customer(world):
    from rest_framework.test import APIClient

    w = world
    make_code(state="vip_day", employees=[w.staff], tags=[w.key_account, w.vip])
    api = APIClient()
    api.force_login(w.staff)  # a staff member may not apply locked tags themself (rule 6) …
    r = api.post("/api/v1/customers/", {"external_userid": "wmLOCK2", "followers": [
        {"employee": "zhangsan", "state": "vip_day"}]}, format="json")
    assert r.status_code == 201, r.content
    # … but the code is automation: its locked tag is applied
    assert set(r.json()["tags"]) >= {w.vip.pk, w.key_account.pk}


def test_single_choice_keeps_one_tag_and_audits_the_removed_sibling(world):
    w = world
    make_code(state="hot_ad", employees=[w.staff], tags=[w.hot])
    customer = w.c_staff
    Tagging.objects.create(customer=customer, tag=w.first_contact)
    FollowRelation.objects.filter(customer=customer).delete()
    add_through("hot_ad", w.staff, customer.external_userid)
    assert tag_ids(customer) == {w.hot.pk}
    removal = TagEvent.objects.get(customer=customer, action="remove")
    assert removal.tag_id == w.first_contact.pk and removal.source == "channel"


def test_other_states_disabled_codes_and_no_state_apply_nothing(world, crm):
    w = world
    make_code(state="store_qr", employees=[w.staff], tags=[w.vip])
    make_code(state="off_code", employees=[w.staff], tags=[w.vip], enabled=False)
    for ext, state in (("wmA", "store_qr2"), ("wmB", "STORE_QR"), ("wmC", ""), ("wmD", "off_code")):
        customer = add_through(state, w.staff, ext)
        assert tag_ids(customer) == set(), state
    assert ChannelAdd.objects.count() == 0
    customer = add_through("store_qr", w.staff, "wmE")
    assert tag_ids(customer) == {w.vip.pk}


def test_an_ended_relation_that_comes_back_is_a_new_add_and_its_loss_counts(world):
    w = world
    code = make_code(state="live", employees=[w.staff], tags=[w.vip])
    customer = add_through("live", w.staff, "wmBACK")
    # WeCom: the customer deleted the employee (del_follow_user)
    follow_relation_end(actor=ENTERPRISE, customer=customer, employee=w.staff, status=RelationStatus.LOST)
    start, end = parse_range({})
    assert code_stats(code, start=start, end=end).totals == {"added": 1, "lost": 1, "still_followed": 0}
    Tagging.objects.filter(customer=customer).delete()
    add_through("live", w.staff, "wmBACK")  # they add the employee again through the code
    assert tag_ids(customer) == {w.vip.pk}
    assert ChannelAdd.objects.filter(code=code).count() == 2
    assert code_stats(code, start=start, end=end).totals == {"added": 2, "lost": 1, "still_followed": 1}


def test_a_tag_the_owner_can_no_longer_see_is_still_applied_and_the_page_warns(world):
    from channels.selectors import code_warnings
    from channels.services import channel_code_create
    from org.actors import Actor

    w = world
    code = channel_code_create(actor=Actor(employee=w.manager), data={
        "name": "售后活动", "employees": ["zhangsan"], "tags": [w.vip.pk], "department": w.sales.pk})
    w.level.departments.set([w.after_sales])  # 客户等级 is now for 售后部 only: the manager no longer sees VIP客户
    customer = add_through(code.state, w.staff, "wmHIDDEN")
    assert tag_ids(customer) == {w.vip.pk}
    assert any("VIP客户" in warning for warning in code_warnings(code))


def test_remark_template_names_the_channel_and_the_customer(world):
    w = world
    make_code(name="车展", state="expo", employees=[w.staff], remark_template="{channel}-{name}")
    customer = add_through("expo", w.staff, "wmREM", name="李女士")
    assert FollowRelation.objects.get(customer=customer).remark == "车展-李女士"


def test_remark_template_never_overwrites_a_remark_the_relation_came_with(world):
    w = world
    make_code(name="车展", state="expo", employees=[w.staff], remark_template="{channel}-{name}")
    customer, _created = customer_upsert(actor=ENTERPRISE, data={
        "external_userid": "wmOWN", "name": "王先生",
        "followers": [{"employee": w.staff.userid, "state": "expo", "remark": "老客户介绍"}]})
    assert FollowRelation.objects.get(customer=customer).remark == "老客户介绍"
