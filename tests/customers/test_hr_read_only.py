"""HR reads customers and changes nothing: no tagging or notes through the services or the API,
unless the HR user also holds the staff role."""

from __future__ import annotations

import pytest

from customers.models import Job, JobKind, Note, TagEvent, Tagging
from customers.services import (
    TagOperation,
    customer_tags_replace,
    customer_tags_update,
    customers_tags_bulk_update,
    note_create,
)
from tagportal.errors import NotAllowed
from tests.conftest import as_employee
from tests.customers.world import actor, world_fixture  # noqa: F401
from tests.factories import CustomerFactory, EmployeeFactory

pytestmark = pytest.mark.django_db
URL = "/api/v1/customers/"


# ---------------------------------------------------------------- HR reads customers, changes nothing


def test_hr_cannot_tag_or_write_notes_through_the_services(world):
    w = world
    hr = actor(w.hr)
    with pytest.raises(NotAllowed):
        customer_tags_update(actor=hr, customer=w.c_staff, add=[w.vip], source="manual")
    with pytest.raises(NotAllowed):
        customer_tags_replace(actor=hr, customer=w.c_staff, tag_ids=[w.vip.pk], personal_tag_ids=None,
                              source="manual")
    with pytest.raises(NotAllowed):
        customers_tags_bulk_update(actor=hr, operations=[TagOperation(w.c_staff.pk, add=(w.vip.pk,))],
                                   source="bulk")
    with pytest.raises(NotAllowed):
        note_create(actor=hr, customer=w.c_staff, text="人事的记录")
    assert not Tagging.objects.exists() and not Note.objects.exists() and not TagEvent.objects.exists()


def test_hr_who_is_also_staff_tags_through_the_staff_role(world):
    w = world
    both = EmployeeFactory(userid="hrsales", roles=["hr", "staff"], departments=[w.sales])
    customer = CustomerFactory(followers=[both])
    customer_tags_update(actor=actor(both), customer=customer, add=[w.vip], source="manual")
    assert Tagging.objects.filter(customer=customer, tag=w.vip).exists()


def test_hr_is_refused_over_the_api_tags_bulk_job_and_notes(world):
    w = world
    api = as_employee(w.hr)
    assert api.get(f"{URL}{w.c_staff.pk}/").status_code == 200  # HR still sees customers
    response = api.post(f"{URL}{w.c_staff.pk}/tags/", {"add": [w.vip.pk]}, format="json")
    assert response.status_code == 403, response.content
    response = api.post("/api/v1/tagging/bulk/", {"operations": [{"customer": w.c_staff.pk, "add": [w.vip.pk]}]},
                        format="json")
    assert response.status_code == 403, response.content
    response = api.post("/api/v1/tagging/bulk/", {"filter": {}, "add": [w.vip.pk]}, format="json")
    assert response.status_code in (400, 403), response.content
    response = api.post(f"{URL}{w.c_staff.pk}/notes/", {"text": "人事的记录"}, format="json")
    assert response.status_code == 403, response.content
    assert not Tagging.objects.exists() and not Note.objects.exists()
    assert not Job.objects.filter(kind=JobKind.BULK_TAGGING).exists()
