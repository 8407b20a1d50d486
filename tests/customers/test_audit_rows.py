"""The audit (标签变更记录) in paths that are easy to miss: deleting a personal tag records each
removal, and the bulk path's COPY-written rows carry source, actor and job."""

from __future__ import annotations

import pytest

from customers.models import Job, JobKind, PersonalTagging, TagEvent, TagSource
from customers.services import TagOperation, customers_tags_bulk_update
from tags.models import PersonalTag
from tags.services import personal_tag_delete
from tests.customers.world import actor, world_fixture  # noqa: F401
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


# ---------------------------------------------------------------- personal tag delete is audited


def test_deleting_a_personal_tag_audits_each_removal(world):
    w = world
    mine = PersonalTag.objects.create(owner=w.staff, name="爱喝茶")
    for c in (w.c_staff, w.c_shared):
        PersonalTagging.objects.create(customer=c, personal_tag=mine)
    personal_tag_delete(actor=actor(w.staff), personal_tag=mine)
    assert not PersonalTagging.objects.exists()
    events = TagEvent.objects.filter(action="remove", tag_name="爱喝茶")
    assert sorted(e.customer_id for e in events) == sorted([w.c_staff.pk, w.c_shared.pk])
    assert {(e.source, e.actor_employee_id) for e in events} == {("manual", w.staff.pk)}


# ---------------------------------------------------------------- audit rows of the COPY path


def test_bulk_audit_rows_written_by_copy_carry_source_actor_and_job(world):
    w = world
    customers = CustomerFactory.create_batch(120, followers=[w.staff])
    job = Job.objects.create(kind=JobKind.BULK_TAGGING, actor_employee=w.staff, params={})
    result = customers_tags_bulk_update(
        actor=actor(w.staff), operations=[TagOperation(c.pk, add=(w.vip.pk,)) for c in customers],
        source=TagSource.BULK, job=job,
    )
    assert result.added == 120  # > 100 pairs: the COPY path on PostgreSQL
    events = TagEvent.objects.filter(tag=w.vip)
    assert events.count() == 120
    assert set(events.values_list("source", "actor_employee_id", "actor_client_id", "job_id", "action",
                                  "tag_name")) == {("bulk", w.staff.pk, None, job.pk, "add", "VIP客户")}
    assert set(events.values_list("customer_id", flat=True)) == {c.pk for c in customers}
