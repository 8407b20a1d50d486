"""`GET jobs/` and `GET transfers/` cost the same few queries whatever the number of rows;
a transfer's per-customer items are served page by page at `transfers/{id}/items/`."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from customers.admin_transfers import ITEMS_PER_PAGE
from customers.models import Job, JobKind, JobStatus, TransferOutcome
from org.actors import Actor
from tests.conftest import as_employee
from tests.customers.test_transfer import portrait, run
from tests.factories import CustomerFactory, EmployeeFactory

pytestmark = pytest.mark.django_db


def queries(client, url) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200, response.content
    return len(ctx.captured_queries)


def add_jobs(employee, n: int) -> None:
    for _ in range(n):
        job = Job.objects.create(kind=JobKind.BULK_TAGGING, status=JobStatus.SUCCEEDED, total=3, done=3,
                                 actor_employee=employee)
        Job.objects.create(kind=JobKind.UNDO, status=JobStatus.FAILED, undo_of=job, actor_employee=employee)
        Job.objects.create(kind=JobKind.UNDO, status=JobStatus.SUCCEEDED, undo_of=job, actor_employee=employee)


def test_job_list_queries_do_not_grow_with_rows(admin_user, django_assert_max_num_queries):
    client = as_employee(admin_user)
    add_jobs(admin_user, 2)
    few = queries(client, "/api/v1/jobs/")
    add_jobs(admin_user, 15)
    with django_assert_max_num_queries(few):
        response = client.get("/api/v1/jobs/?page_size=100")
    rows = response.json()["results"]
    assert len(rows) == 51
    bulk = [r for r in rows if r["kind"] == "bulk_tagging"]
    assert len(bulk) == 17 and all(len(r["undone_by"]) == 2 and not r["undoable"] for r in bulk)


def test_job_undoable_while_only_failed_undos_exist(admin_user):
    job = Job.objects.create(kind=JobKind.BULK_TAGGING, status=JobStatus.SUCCEEDED, total=1, done=1,
                             actor_employee=admin_user)
    failed = Job.objects.create(kind=JobKind.UNDO, status=JobStatus.FAILED, undo_of=job, actor_employee=admin_user)
    client = as_employee(admin_user)
    got = client.get(f"/api/v1/jobs/{job.pk}/").json()
    assert got["undone_by"] == [failed.pk] and got["undoable"] is True
    row = next(r for r in client.get("/api/v1/jobs/").json()["results"] if r["id"] == job.pk)
    assert row["undoable"] is True


def hand_over(hr, n_transfers: int, customers_each: int = 1) -> list:
    done = []
    for _ in range(n_transfers):
        leaver, heir = EmployeeFactory(), EmployeeFactory()
        for _ in range(customers_each):
            portrait(leaver, CustomerFactory(), tags=(), notes=())
        done.append(run(Actor(employee=hr), leaver, [heir]))
    return done


def test_transfer_list_queries_do_not_grow_with_rows(django_assert_max_num_queries):
    hr = EmployeeFactory(roles=["hr"])
    client = as_employee(hr)
    hand_over(hr, 2, customers_each=2)
    few = queries(client, "/api/v1/transfers/")
    hand_over(hr, 8, customers_each=2)
    with django_assert_max_num_queries(few):
        response = client.get("/api/v1/transfers/")
    rows = response.json()["results"]
    assert len(rows) == 10 and all(r["outcomes"] == {"moved": 2} for r in rows)


def test_transfer_detail_has_counts_and_the_first_page_then_items_page_on():
    hr = EmployeeFactory(roles=["hr"])
    client = as_employee(hr)
    (transfer,) = hand_over(hr, 1, customers_each=5)
    item_ids = list(transfer.items.order_by("id").values_list("customer_id", flat=True))
    detail = client.get(f"/api/v1/transfers/{transfer.pk}/?page_size=2").json()
    assert detail["outcomes"] == {"moved": 5}
    assert [i["customer"] for i in detail["items"]] == item_ids[:2]
    assert set(detail["items"][0]) == {"customer", "external_userid", "name", "to_employee", "outcome", "detail",
                                       "done_at"}
    url, seen = detail["items_next"], [i["customer"] for i in detail["items"]]
    assert f"/api/v1/transfers/{transfer.pk}/items/?" in url
    while url:
        page = client.get(url).json()
        assert set(page) == {"results", "next"} and len(page["results"]) <= 2
        seen += [i["customer"] for i in page["results"]]
        url = page["next"]
    assert seen == item_ids
    everything = client.get(f"/api/v1/transfers/{transfer.pk}/items/").json()
    assert [i["customer"] for i in everything["results"]] == item_ids and everything["next"] is None
    assert {i["outcome"] for i in everything["results"]} == {TransferOutcome.MOVED}
    small = client.get(f"/api/v1/transfers/{transfer.pk}/").json()
    assert len(small["items"]) == 5 and small["items_next"] is None


def test_transfer_items_are_hr_only_and_unknown_transfers_404():
    hr = EmployeeFactory(roles=["hr"])
    (transfer,) = hand_over(hr, 1)
    staff = as_employee(EmployeeFactory())
    assert staff.get(f"/api/v1/transfers/{transfer.pk}/items/").status_code in (403, 404)
    assert as_employee(hr).get(f"/api/v1/transfers/{transfer.pk + 999}/items/").status_code == 404


def test_admin_result_page_is_paginated(client):
    hr = EmployeeFactory(roles=["hr"])
    (transfer,) = hand_over(hr, 1, customers_each=ITEMS_PER_PAGE + 3)
    client.force_login(hr)
    url = reverse("admin:customers_transfer_change", args=[transfer.pk])
    first = client.get(url).content.decode()
    assert first.count('<td class="tp-outcome-moved">') == ITEMS_PER_PAGE
    second = client.get(url + "?page=2").content.decode()
    assert second.count('<td class="tp-outcome-moved">') == 3
