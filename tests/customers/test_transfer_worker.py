"""A transfer on a real worker, killed mid-way and restarted: every customer moved exactly once."""

from __future__ import annotations

import time

import pytest
from django.db import transaction

from customers.models import (
    Customer,
    FollowRelation,
    Job,
    JobStatus,
    Note,
    PersonalTagging,
    RelationStatus,
    TagEvent,
    TagSource,
    Transfer,
    TransferOutcome,
)
from customers.transfers import transfer_start
from org.actors import Actor
from tags.models import PersonalTag
from tests.factories import EmployeeFactory

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

TAGS = ("高意向", "VIP", "喜欢周末沟通")


def build_portraits(departing, n: int) -> list[int]:
    """`n` customers followed by `departing`, each with 3 personal tags and a note (set-based)."""
    customers = Customer.objects.bulk_create(
        [Customer(external_userid=f"wk{i:06d}", name=f"客户{i}") for i in range(n)], batch_size=5000
    )
    FollowRelation.objects.bulk_create(
        [FollowRelation(customer=c, employee=departing, remark=f"备注{c.pk}") for c in customers], batch_size=5000
    )
    tags = [PersonalTag.objects.create(owner=departing, name=name) for name in TAGS]
    PersonalTagging.objects.bulk_create(
        [PersonalTagging(customer=c, personal_tag=t) for c in customers for t in tags], batch_size=5000
    )
    Note.objects.bulk_create([Note(customer=c, author=departing, text="跟进") for c in customers], batch_size=5000)
    return [c.pk for c in customers]


def wait_for(predicate, timeout: float, step: float = 0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError("timed out")


def test_worker_killed_mid_transfer_resumes_and_moves_each_customer_once(celery_worker):
    hr = EmployeeFactory(userid="hr", roles=["hr"])
    zhang, li, wang = (EmployeeFactory(userid=u) for u in ("zhangsan", "lisi", "wangwu"))
    ids = build_portraits(zhang, 6000)

    with transaction.atomic():
        transfer = transfer_start(actor=Actor(employee=hr), from_employee=zhang, to_employees=[li, wang])
    job_id = transfer.job_id

    wait_for(lambda: Job.objects.filter(pk=job_id, done__gt=0).exists(), timeout=60, step=0.01)
    celery_worker.kill()
    job = Job.objects.get(pk=job_id)
    assert job.status == JobStatus.RUNNING and 0 < job.done < 6000, (job.status, job.done)
    half_done = transfer.items.exclude(outcome=TransferOutcome.PENDING).count()
    assert half_done == job.done

    celery_worker.start()
    wait_for(lambda: Job.objects.get(pk=job_id).status == JobStatus.SUCCEEDED, timeout=120, step=0.2)

    job = Job.objects.get(pk=job_id)
    assert job.done == job.total == 6000 and job.failed_items == 0
    assert Transfer.objects.get(pk=transfer.pk).finished_at is not None
    assert set(transfer.items.values_list("outcome", flat=True)) == {TransferOutcome.MOVED}
    # exactly once, customer by customer
    inheritor = dict(transfer.items.values_list("customer_id", "to_employee_id"))
    active = dict(FollowRelation.objects.filter(status=RelationStatus.ACTIVE).values_list("customer_id", "employee_id"))
    assert active == inheritor and len(active) == len(ids)
    assert FollowRelation.objects.filter(employee=zhang, status=RelationStatus.TRANSFERRED).count() == 6000
    assert FollowRelation.objects.count() == 12000
    per_customer = {}
    for cid, owner in PersonalTagging.objects.values_list("customer_id", "personal_tag__owner_id"):
        per_customer.setdefault(cid, []).append(owner)
    assert all(sorted(v) == sorted([zhang.pk] * 3 + [inheritor[c]] * 3) for c, v in per_customer.items())
    assert TagEvent.objects.filter(source=TagSource.TRANSFER).count() == 18000
    assert Note.objects.count() == 6000
    assert PersonalTag.objects.filter(owner__in=[li, wang]).count() == 6


@pytest.mark.django_db(transaction=True)
def test_two_simultaneous_starts_for_one_employee_one_wins_one_409():
    """Two HR sessions confirm at the same moment: the row lock and the partial unique index let one through."""
    import threading

    from django.db import connection

    from tagportal.errors import Conflict

    hr = EmployeeFactory(userid="hr", roles=["hr"])
    zhang, li, wang = (EmployeeFactory(userid=u) for u in ("zhangsan", "lisi", "wangwu"))
    build_portraits(zhang, 50)
    barrier, outcomes = threading.Barrier(2), []

    def start(heir):
        try:
            barrier.wait()
            with transaction.atomic():
                transfer_start(actor=Actor(employee=hr), from_employee=zhang, to_employees=[heir], mark_departed=False)
            outcomes.append("started")
        except Conflict:
            outcomes.append("conflict")
        finally:
            connection.close()

    from unittest import mock

    with mock.patch("customers.jobs.job_enqueue"):  # only the start is under test, not the run
        threads = [threading.Thread(target=start, args=(heir,)) for heir in (li, wang)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    assert sorted(outcomes) == ["conflict", "started"]
    assert Transfer.objects.count() == 1
    assert not FollowRelation.objects.filter(status=RelationStatus.TRANSFERRED).exists()
