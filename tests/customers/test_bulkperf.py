"""Set-based tagging at speed (issue 5, performance) keeps every rule.

TagEvent rows carry no database foreign-key constraints (they are history, written by the hundred
thousand): deleting what they point at must still behave as `on_delete` says, through Django's
collector. The one-statement write paths (insert + audit, delete + audit) must audit exactly the
changes made, in order, with source, actor and job.
"""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction
from django.db.models import ProtectedError

from customers.models import Customer, Job, TagEvent, Tagging
from customers.services import (
    TagOperation,
    customer_tags_update,
    customers_tags_bulk_apply,
    customers_tags_bulk_update,
)
from org.actors import Actor
from tagportal.errors import NotAllowed, ValidationFailed
from tags.models import PersonalTag
from tags.services import personal_tag_delete, tag_delete
from tests.customers.world import actor, world_fixture  # noqa: F401
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


def _tag(world, customer, tag, who=None, job=None, source="manual"):
    return customer_tags_update(actor=who or actor(world.admin), customer=customer, add=[tag], source=source, job=job)


def test_deleting_a_customer_deletes_its_audit_rows(world):
    _tag(world, world.c_staff, world.vip)
    _tag(world, world.c_team, world.vip)
    world.c_staff.delete()
    assert list(TagEvent.objects.values_list("customer_id", flat=True)) == [world.c_team.pk]


def test_deleting_a_tag_keeps_its_history_by_name(world):
    _tag(world, world.c_staff, world.potential)
    tag_delete(actor=actor(world.tag_admin), tag=world.potential)
    events = list(TagEvent.objects.order_by("id").values_list("tag_id", "tag_name", "action"))
    assert events == [(None, "潜在客户", "add"), (None, "潜在客户", "remove")]
    assert TagEvent.objects.order_by("id").first().tag is None  # no dangling id


def test_deleting_a_personal_tag_or_a_job_nulls_their_references(world):
    mine = PersonalTag.objects.create(owner=world.staff, name="家长决策")
    customer_tags_update(actor=actor(world.staff), customer=world.c_staff, personal_add=[mine], source="manual")
    job = Job.objects.create(kind="bulk_tagging", actor_employee=world.admin)
    _tag(world, world.c_team, world.vip, job=job, source="bulk")
    personal_tag_delete(actor=actor(world.staff), personal_tag=mine)
    job.delete()
    assert set(TagEvent.objects.values_list("personal_tag_id", "job_id", "tag_name")) == {
        (None, None, "家长决策"), (None, None, "VIP客户")}


def test_actors_with_audit_rows_are_protected(world):
    _tag(world, world.c_staff, world.vip, who=actor(world.staff))
    _tag(world, world.c_team, world.vip, who=world.enterprise, source="api")
    with pytest.raises(ProtectedError):
        world.staff.delete()
    with pytest.raises(ProtectedError):
        world.client.delete()
    assert TagEvent.objects.count() == 2


def test_bulk_add_audits_each_new_tagging_once_with_actor_and_job(world):
    extra = [CustomerFactory(followers=[world.staff]) for _ in range(3)]
    Tagging.objects.create(customer=extra[0], tag=world.vip)  # already there: unchanged, no event
    job = Job.objects.create(kind="bulk_tagging", actor_client=world.client)
    result = customers_tags_bulk_update(
        actor=world.enterprise, source="bulk", job=job,
        operations=[TagOperation(customer_id=c.pk, add=(world.vip.pk, world.potential.pk)) for c in extra],
    )
    assert result.as_dict() == {"added": 5, "removed": 0, "unchanged": 1}
    events = set(TagEvent.objects.values_list("customer_id", "tag_id", "tag_name", "action", "source",
                                              "actor_client_id", "actor_employee_id", "job_id"))
    expected = {(c.pk, t.pk, t.name, "add", "bulk", world.client.pk, None, job.pk)
                for c in extra for t in (world.vip, world.potential)} - {
        (extra[0].pk, world.vip.pk, "VIP客户", "add", "bulk", world.client.pk, None, job.pk)}
    assert events == expected
    assert Tagging.objects.filter(customer__in=extra).count() == 6


def test_bulk_single_choice_audits_sibling_removal_before_the_add(world):
    customers = [CustomerFactory(followers=[world.staff]) for _ in range(2)]
    for c in customers:
        Tagging.objects.create(customer=c, tag=world.first_contact)
    before = {c.pk: Customer.objects.get(pk=c.pk).updated_at for c in customers}
    result = customers_tags_bulk_update(
        actor=actor(world.staff), source="manual",
        operations=[TagOperation(customer_id=c.pk, add=(world.hot.pk,)) for c in customers],
    )
    assert result.as_dict() == {"added": 2, "removed": 2, "unchanged": 0}
    for c in customers:
        history = list(TagEvent.objects.filter(customer=c).order_by("id").values_list("tag_name", "action"))
        assert history == [("初次接触", "remove"), ("高意向", "add")]
        assert set(Tagging.objects.filter(customer=c).values_list("tag_id", flat=True)) == {world.hot.pk}
        assert Customer.objects.get(pk=c.pk).updated_at > before[c.pk]


def test_bulk_remove_audits_only_taggings_that_existed(world):
    customers = [CustomerFactory(followers=[world.staff]) for _ in range(3)]
    Tagging.objects.create(customer=customers[1], tag=world.vip)
    untouched = Customer.objects.get(pk=customers[0].pk).updated_at
    result = customers_tags_bulk_update(
        actor=Actor(employee=world.staff), source="manual",
        operations=[TagOperation(customer_id=c.pk, remove=(world.vip.pk,)) for c in customers],
    )
    assert result.as_dict() == {"added": 0, "removed": 1, "unchanged": 2}
    assert list(TagEvent.objects.values_list("customer_id", "tag_name", "action")) == [
        (customers[1].pk, "VIP客户", "remove")]
    assert Customer.objects.get(pk=customers[0].pk).updated_at == untouched  # nothing changed there


def test_taggings_still_cannot_point_at_nothing(world):
    """Tagging's references are checked per statement (migration 0012) rather than by foreign keys;
    what they guarantee is tested in tests/customers/test_tagging_integrity.py."""
    with pytest.raises(IntegrityError), transaction.atomic():
        Tagging.objects.create(customer_id=10**9, tag=world.vip)
    with pytest.raises(IntegrityError), transaction.atomic():
        Tagging.objects.create(customer=world.c_staff, tag_id=10**9)
    assert not Tagging.objects.exists()


def test_repeated_operation_shapes_are_still_checked_item_by_item(world):
    """Operations are parsed once per distinct (add, remove); a look-alike of another type is not
    taken for it (True == 1, 1.0 == 1), and every bad item is still listed."""
    good = (world.vip.pk,)
    look_alike = (True,) if world.vip.pk == 1 else (float(world.vip.pk),)
    customers = [CustomerFactory(followers=[world.staff]) for _ in range(3)]
    operations = [TagOperation(customer_id=customers[0].pk, add=good),
                  TagOperation(customer_id=customers[1].pk, add=look_alike),
                  TagOperation(customer_id=customers[2].pk, add=good, remove=good)]
    with pytest.raises(ValidationFailed) as caught:
        customers_tags_bulk_update(actor=world.enterprise, operations=operations, source="api")
    bad = {item["index"]: {e["code"] for e in item["errors"]} for item in caught.value.details}
    assert bad == {1: {"invalid"}, 2: {"add_and_remove"}}
    assert not Tagging.objects.exists() and not TagEvent.objects.exists()


def test_bulk_apply_writes_one_change_for_many_customers_by_the_same_rules(world):
    """`customers_tags_bulk_apply` (a filter job's chunk): single-choice siblings removed and audited,
    customers out of reach left alone and reported, the job on every audit row."""
    mine = [CustomerFactory(followers=[world.staff]) for _ in range(3)]
    Tagging.objects.create(customer=mine[0], tag=world.first_contact)
    Tagging.objects.create(customer=mine[1], tag=world.hot)
    job = Job.objects.create(kind="bulk_tagging", actor_employee=world.staff)
    result, missing = customers_tags_bulk_apply(
        actor=actor(world.staff), customer_ids=[c.pk for c in mine] + [world.c_after.pk, 10**9],
        add=[world.hot.pk], source="bulk", job=job,
    )
    assert missing == [world.c_after.pk, 10**9]
    assert result.as_dict() == {"added": 2, "removed": 1, "unchanged": 1}
    assert set(Tagging.objects.values_list("customer_id", "tag_id")) == {(c.pk, world.hot.pk) for c in mine}
    assert list(TagEvent.objects.filter(customer=mine[0]).order_by("id").values_list("tag_name", "action", "job")) == [
        ("初次接触", "remove", job.pk), ("高意向", "add", job.pk)]
    assert not Tagging.objects.filter(customer=world.c_after).exists()


@pytest.mark.parametrize("who, change, code", [
    ("staff", {"add": ["key_account"]}, "locked"),
    ("staff", {"remove": ["key_account"]}, "locked"),
    ("staff", {"add": ["maintenance"]}, "unknown_tags"),  # out of the staff's scope
    ("admin", {"add": ["first_contact", "hot"]}, "single_choice"),
    ("admin", {"add": ["vip"], "remove": ["vip"]}, "add_and_remove"),
    ("hr", {"add": ["vip"]}, "hr_read_only"),
])
def test_bulk_apply_refuses_a_change_that_breaks_a_rule_and_writes_nothing(world, who, change, code):
    Tagging.objects.create(customer=world.c_staff, tag=world.key_account)
    tags = {key: [getattr(world, name).pk for name in names] for key, names in change.items()}
    with pytest.raises((ValidationFailed, NotAllowed)) as caught:
        customers_tags_bulk_apply(actor=actor(getattr(world, who)), customer_ids=[world.c_staff.pk, world.c_shared.pk],
                                  source="bulk", **tags)
    assert caught.value.code == code
    assert list(Tagging.objects.values_list("customer_id", "tag_id")) == [(world.c_staff.pk, world.key_account.pk)]
    assert not TagEvent.objects.exists()
