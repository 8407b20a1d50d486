"""Bulk-tagging jobs on a real Celery worker (Redis broker, separate process): end to end,
a worker SIGKILLed mid-job and restarted, cancellation."""

from __future__ import annotations

import time

import pytest
from django.db.models import Count

from customers.models import Customer, Job, JobStatus, TagEvent, Tagging
from tests.factories import make_tag_group

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

BULK = "/api/v1/tagging/bulk/"
FINISHED = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)


@pytest.fixture
def small_chunks(monkeypatch):
    """The worker process caps chunks at 40 customers, so a few thousand make a job of many chunks."""
    monkeypatch.setenv("TAGPORTAL_JOB_MAX_CHUNK", "40")


def make_customers(n: int) -> list[int]:
    Customer.objects.bulk_create(
        [Customer(external_userid=f"wmw{i:07d}", name=f"客户{i}") for i in range(n)], batch_size=2000
    )
    return list(Customer.objects.values_list("pk", flat=True))


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def test_filter_job_runs_on_the_worker(small_chunks, celery_worker, key_api):
    _g, (vip,) = make_tag_group("等级", tags=["VIP"])
    make_customers(300)
    response = key_api.post(BULK, {"filter": {}, "add": [vip.pk]}, format="json")
    assert response.status_code == 202
    job_id = response.json()["job"]
    job = wait_for(lambda: Job.objects.filter(pk=job_id, status__in=FINISHED).first(), 60, "the job to finish")
    assert job.status == JobStatus.SUCCEEDED and job.total == job.done == 300
    assert Tagging.objects.filter(tag=vip).count() == 300
    body = key_api.get(f"/api/v1/jobs/{job_id}/").json()
    assert body["status"] == "succeeded" and body["progress"]["percent"] == 100.0


def test_killed_worker_is_restarted_and_the_job_finishes_exactly_once(small_chunks, celery_worker, key_api):
    _g, (vip,) = make_tag_group("等级", tags=["VIP"])
    ids = make_customers(4000)
    job_id = key_api.post(BULK, {"filter": {}, "add": [vip.pk]}, format="json").json()["job"]
    wait_for(lambda: Job.objects.filter(pk=job_id, done__gt=0).exists(), 60, "the first chunk")
    celery_worker.kill()  # SIGKILL: no clean shutdown, the task is never acked
    job = Job.objects.get(pk=job_id)
    assert job.status == JobStatus.RUNNING and 0 < job.done < job.total == 4000

    celery_worker.start()
    job = wait_for(lambda: Job.objects.filter(pk=job_id, status__in=FINISHED).first(), 120, "the job to finish")
    assert job.status == JobStatus.SUCCEEDED
    assert job.done == job.total == 4000
    assert set(Tagging.objects.filter(tag=vip).values_list("customer_id", flat=True)) == set(ids)
    per_customer = TagEvent.objects.filter(job=job).values("customer_id").annotate(n=Count("id"))
    assert per_customer.count() == 4000 and {row["n"] for row in per_customer} == {1}
    assert "requeued" in [entry["event"] for entry in job.log]
    assert job.counts["added"] == 4000


def test_cancel_stops_a_running_job_between_chunks(small_chunks, celery_worker, key_api):
    _g, (vip,) = make_tag_group("等级", tags=["VIP"])
    make_customers(4000)
    job_id = key_api.post(BULK, {"filter": {}, "add": [vip.pk]}, format="json").json()["job"]
    wait_for(lambda: Job.objects.filter(pk=job_id, done__gt=0).exists(), 60, "the first chunk")
    assert key_api.post(f"/api/v1/jobs/{job_id}/cancel/").status_code == 200
    job = wait_for(lambda: Job.objects.filter(pk=job_id, status__in=FINISHED).first(), 60, "the job to stop")
    assert job.status == JobStatus.CANCELLED
    assert 0 < job.done < 4000
    # What was done stays done, consistently with the progress: nothing after the cancel.
    assert Tagging.objects.filter(tag=vip).count() == job.done == TagEvent.objects.filter(job=job).count()
