"""follow_relation_end: a relation ends as `deleted` (the employee removed the customer) or `lost`
(the customer removed the employee) and stays as history; nothing else moves."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from customers.models import FollowRelation, RelationStatus
from customers.services import customer_upsert, follow_relation_end
from org.actors import Actor
from tagportal.errors import ValidationFailed
from tests.factories import CustomerFactory, EmployeeFactory, make_tag_group

pytestmark = pytest.mark.django_db

WECOM = Actor(label="企业微信")


def test_lost_keeps_the_relation_its_remark_and_the_customers_tags():
    zhangwei = EmployeeFactory(userid="zhangwei")
    customer = CustomerFactory(followers=[zhangwei])
    FollowRelation.objects.filter(customer=customer).update(remark="老客户")
    _group, (vip,) = make_tag_group("客户等级", tags=["VIP客户"])
    customer.tags.add(vip)
    at = datetime(2026, 1, 1, tzinfo=UTC)
    relation = follow_relation_end(actor=WECOM, customer=customer.external_userid, employee="zhangwei",
                                   status=RelationStatus.LOST, ended_at=at)
    relation.refresh_from_db()
    assert (relation.status, relation.ended_at, relation.remark) == (RelationStatus.LOST, at, "老客户")
    assert list(customer.tags.all()) == [vip]


def test_ending_twice_changes_nothing_and_unknowns_are_none():
    zhangwei = EmployeeFactory(userid="zhangwei")
    customer = CustomerFactory(followers=[zhangwei])
    first = follow_relation_end(actor=WECOM, customer=customer, employee=zhangwei, status=RelationStatus.DELETED)
    again = follow_relation_end(actor=WECOM, customer=customer.pk, employee=zhangwei, status=RelationStatus.LOST)
    assert again.status == RelationStatus.DELETED and again.ended_at == first.ended_at
    assert follow_relation_end(actor=WECOM, customer="wmNOBODY", employee="zhangwei",
                               status=RelationStatus.LOST) is None
    assert follow_relation_end(actor=WECOM, customer=customer, employee="nobody", status=RelationStatus.LOST) is None


def test_a_transferred_relation_is_left_alone():
    old, new = EmployeeFactory(userid="old"), EmployeeFactory(userid="new")
    customer = CustomerFactory(followers=[old])
    FollowRelation.objects.filter(customer=customer).update(status=RelationStatus.TRANSFERRED, transferred_to=new)
    relation = follow_relation_end(actor=WECOM, customer=customer, employee=old, status=RelationStatus.LOST)
    assert relation.status == RelationStatus.TRANSFERRED and relation.ended_at is None


def test_only_deleted_or_lost():
    zhangwei = EmployeeFactory(userid="zhangwei")
    customer = CustomerFactory(followers=[zhangwei])
    for status in (RelationStatus.ACTIVE, RelationStatus.TRANSFERRED, "gone"):
        with pytest.raises(ValidationFailed):
            follow_relation_end(actor=WECOM, customer=customer, employee=zhangwei, status=status)
    assert FollowRelation.objects.get(customer=customer).status == RelationStatus.ACTIVE


def test_a_returning_customer_is_active_again():
    zhangwei = EmployeeFactory(userid="zhangwei")
    customer = CustomerFactory(followers=[zhangwei])
    follow_relation_end(actor=WECOM, customer=customer, employee=zhangwei, status=RelationStatus.LOST)
    customer_upsert(actor=WECOM, data={"external_userid": customer.external_userid,
                                       "followers": [{"employee": "zhangwei"}]})
    relation = FollowRelation.objects.get(customer=customer)
    assert (relation.status, relation.ended_at) == (RelationStatus.ACTIVE, None)
