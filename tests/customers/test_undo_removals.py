"""Undo of a job that REMOVED a tag: the tag comes back only where nobody changed it since.
A later re-add and removal by someone else (by hand, by another bulk call, through the portrait
form) stands; a later re-add that is still there is not duplicated."""

from __future__ import annotations

import pytest

from customers.jobs import bulk_tagging_start, job_undo
from customers.models import JobStatus, TagAction, TagEvent, Tagging, TagSource
from customers.services import TagOperation, customer_tags_replace, customer_tags_update, customers_tags_bulk_update
from org.actors import Actor
from tests.factories import CustomerFactory, EmployeeFactory, make_tag_group

pytestmark = pytest.mark.django_db


def run_pending(capture, fn, **kwargs):
    with capture(execute=True):
        return fn(**kwargs)


def test_undo_of_a_removal_spares_customers_whose_tag_others_changed_since(django_capture_on_commit_callbacks):
    _g, (vip, other) = make_tag_group("客户等级", tags=["VIP", "普通"])
    admin = Actor(employee=EmployeeFactory(roles=["enterprise_admin"]))
    staff = EmployeeFactory(roles=["staff"])
    colleague = Actor(employee=EmployeeFactory(roles=["tag_admin"]))
    by_hand, kept_again, by_bulk, by_form, untouched, untouched2 = CustomerFactory.create_batch(6, followers=[staff])
    everyone = [by_hand, kept_again, by_bulk, by_form, untouched, untouched2]
    Tagging.objects.bulk_create([Tagging(customer=c, tag=vip) for c in everyone])
    Tagging.objects.create(customer=by_form, tag=other)

    job = run_pending(django_capture_on_commit_callbacks, bulk_tagging_start, actor=admin, remove=[vip.pk],
                      source=TagSource.BULK, filter_params={})
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED and not Tagging.objects.filter(tag=vip).exists()

    me = Actor(employee=staff)
    for c in (by_hand, kept_again, by_bulk, by_form):  # someone else puts VIP back …
        customer_tags_update(actor=me, customer=c, add=[vip.pk], source="manual")
    # … and then it is removed again, in different ways (kept_again keeps it)
    customer_tags_update(actor=me, customer=by_hand, remove=[vip.pk], source="manual")
    customers_tags_bulk_update(actor=colleague, operations=[TagOperation(customer_id=by_bulk.pk, remove=(vip.pk,))],
                               source=TagSource.API)
    customer_tags_replace(actor=me, customer=by_form, tag_ids=[other.pk], personal_tag_ids=None, source="manual")
    assert set(Tagging.objects.filter(tag=vip).values_list("customer_id", flat=True)) == {kept_again.pk}

    undo = run_pending(django_capture_on_commit_callbacks, job_undo, actor=admin, job=job)
    undo.refresh_from_db()
    assert undo.status == JobStatus.SUCCEEDED
    have_vip = set(Tagging.objects.filter(tag=vip).values_list("customer_id", flat=True))
    assert have_vip == {kept_again.pk, untouched.pk, untouched2.pk}
    assert Tagging.objects.filter(customer=kept_again, tag=vip).count() == 1
    restored = TagEvent.objects.filter(job=undo, action=TagAction.ADD).values_list("customer_id", flat=True)
    assert sorted(restored) == sorted([untouched.pk, untouched2.pk])
    assert undo.counts["restored"] == 2 and undo.counts["kept"] == 4
    assert set(Tagging.objects.filter(customer=by_form).values_list("tag_id", flat=True)) == {other.pk}
