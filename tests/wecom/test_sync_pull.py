"""The full pull (`wecom_sync`) from the WeCom stand-in over real HTTP, as a job on a real worker:
departments, employees, corp tags, customers with their relations and tags; killed mid-way it
resumes; a second pull changes nothing."""

from __future__ import annotations

import time

import pytest
from django.core.management import call_command

from customers.models import Customer, FollowRelation, Job, JobStatus, TagEvent, Tagging, TagSource
from org.models import Department, Employee, EmployeeStatus
from tags.models import Tag, TagGroup
from wecom.simulator import CorpTag, CorpTagGroup

CUSTOMERS = 230  # three pages of 100 for one batch of employees


def corp(sim) -> None:
    """A small corp: 总部 › 销售部 › 北京组, three users (one has left), corp tags, customers."""
    sim.state.add_department(2, "销售部", parentid=1, order=10)
    sim.state.add_department(3, "北京组", parentid=2, order=5)
    sim.state.add_user("zhangwei", name="张伟", department=[3])
    sim.state.add_user("lina", name="李娜", department=[2, 3])
    gone = sim.state.add_user("old", name="老王", department=[2])
    gone.status = 5
    sim.state.tag_groups["egLEVEL"] = CorpTagGroup(group_id="egLEVEL", group_name="客户等级", order=3, tag=[
        CorpTag(id="etVIP", name="VIP", order=2), CorpTag(id="etNORMAL", name="普通", order=1)])
    sim.state.tag_groups["egSRC"] = CorpTagGroup(group_id="egSRC", group_name="来源", tag=[
        CorpTag(id="etEXPO", name="展会")])
    for i in range(CUSTOMERS):
        tags = [{"group_name": "客户等级", "tag_name": "VIP", "tag_id": "etVIP", "type": 1}] if i % 3 == 0 else []
        sim.state.add_contact(userid="zhangwei", external_userid=f"wmP{i:04d}", name=f"客户{i}",
                              remark=f"备注{i}", state="expo" if i % 2 else "", tags=tags, welcome_code=False,
                              createtime=1700000000 + i)
        if i % 10 == 0:
            sim.state.add_contact(userid="lina", external_userid=f"wmP{i:04d}", welcome_code=False,
                                  tags=[{"group_name": "来源", "tag_name": "展会", "tag_id": "etEXPO", "type": 1}])


def wait_job(job_id: int, timeout: float = 120) -> Job:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = Job.objects.get(pk=job_id)
        if job.status in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED):
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish")


def snapshot() -> dict:
    return {
        "departments": sorted(Department.objects.values_list("external_id", "name", "parent__external_id", "order")),
        "employees": sorted(Employee.objects.values_list("userid", "name", "status")),
        "groups": sorted(TagGroup.objects.values_list("external_id", "name")),
        "tags": sorted(Tag.objects.values_list("external_id", "name", "order", "group__external_id")),
        "customers": sorted(Customer.objects.values_list("external_userid", "name", "updated_at")),
        "relations": sorted(FollowRelation.objects.values_list(
            "customer__external_userid", "employee__userid", "remark", "state", "added_at", "status")),
        "taggings": sorted(Tagging.objects.values_list("customer__external_userid", "tag__external_id")),
        "events": TagEvent.objects.count(),
    }


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_full_pull_on_a_worker_killed_midway_resumes_and_a_second_pull_changes_nothing(wecom_fake, celery_worker):
    from wecom.mapping import WECOM_ACTOR
    from wecom.pull import wecom_sync_start

    sim = wecom_fake
    corp(sim)
    sim.latency = 0.15  # slow pages: the worker is mid-pull when killed
    job = wecom_sync_start(actor=WECOM_ACTOR)
    deadline = time.monotonic() + 60
    while Job.objects.get(pk=job.pk).done < 3 and time.monotonic() < deadline:  # org, tags, a first page
        time.sleep(0.05)
    celery_worker.kill()
    assert Job.objects.get(pk=job.pk).status == JobStatus.RUNNING
    sim.latency = 0
    celery_worker.start()  # re-queues its dead predecessor's job at once
    job = wait_job(job.pk)
    assert job.status == JobStatus.SUCCEEDED, job.log

    assert dict(Department.objects.filter(external_id__in=["2", "3"]).values_list("name", "parent__external_id")) \
        == {"销售部": "1", "北京组": "2"}
    zhang = Employee.objects.get(userid="zhangwei")
    assert zhang.name == "张伟" and zhang.status == EmployeeStatus.ACTIVE and not zhang.has_usable_password()
    assert list(zhang.departments.values_list("external_id", flat=True)) == ["3"]
    assert not Employee.objects.filter(userid="old").exists()  # left before we ever saw them
    level = TagGroup.objects.get(external_id="egLEVEL")
    assert [t.name for t in level.tags.order_by("order")] == ["VIP", "普通"]
    assert Customer.objects.count() == CUSTOMERS
    relation = FollowRelation.objects.get(customer__external_userid="wmP0001", employee=zhang)
    assert (relation.remark, relation.state, int(relation.added_at.timestamp())) == ("备注1", "expo", 1700000001)
    assert FollowRelation.objects.filter(employee__userid="lina").count() == len(range(0, CUSTOMERS, 10))
    assert Tagging.objects.filter(tag__external_id="etVIP").count() == len(range(0, CUSTOMERS, 3))
    assert Tagging.objects.filter(tag__external_id="etEXPO").count() == len(range(0, CUSTOMERS, 10))
    assert set(TagEvent.objects.values_list("source", flat=True)) == {TagSource.WECOM}
    assert TagEvent.objects.count() == Tagging.objects.count()  # each tag added once despite the kill
    assert job.counts["contacts"] >= CUSTOMERS

    before = snapshot()
    again = wecom_sync_start(actor=WECOM_ACTOR)
    again = wait_job(again.pk)
    assert again.status == JobStatus.SUCCEEDED
    assert snapshot() == before
    counts = again.counts
    assert counts["customers_changed"] == counts["tags_added"] == counts["tag_changes"] == 0
    assert counts["departments_changed"] == counts["employees_changed"] == 0


@pytest.mark.django_db(transaction=True)  # the job runs when its transaction commits (inline: no broker)
def test_wecom_sync_command_runs_the_chosen_phases(wecom_fake, capsys):
    corp(wecom_fake)
    call_command("wecom_sync", "--org")
    out = capsys.readouterr().out
    assert "job #" in out and '"employees_changed": 2' in out
    assert Employee.objects.filter(userid__in=["zhangwei", "lina"]).count() == 2
    assert Customer.objects.count() == 0 and not TagGroup.objects.exists()
    call_command("wecom_sync", "--tags", "--customers")
    assert Customer.objects.count() == CUSTOMERS
    # the pull makes WeCom's tags the portal's: nothing of it goes back through the outbox
    from tests.wecom.sync_world import push

    wecom_fake.clear_calls()
    push()
    assert not wecom_fake.calls("externalcontact/mark_tag")


@pytest.mark.django_db(transaction=True)
def test_change_contact_events_update_the_org_and_a_deleted_user_departs_keeping_customers(wecom_fake):
    from tests.wecom.test_sync_taxonomy import deliver

    corp(wecom_fake)
    call_command("wecom_sync", "--org", "--customers")
    base = {"ToUserName": "corp", "FromUserName": "sys", "CreateTime": 1700000100, "MsgType": "event",
            "Event": "change_contact"}
    deliver(wecom_fake, {**base, "ChangeType": "create_party", "Id": 4, "Name": "上海组", "ParentId": 2, "Order": 1})
    deliver(wecom_fake, {**base, "ChangeType": "update_party", "Id": 3, "Name": "北京一组"})
    deliver(wecom_fake, {**base, "ChangeType": "create_user", "UserID": "wangfang", "Name": "王芳",
                         "Department": "4"})
    deliver(wecom_fake, {**base, "ChangeType": "update_user", "UserID": "lina", "Name": "李娜娜", "Department": "4"})
    deliver(wecom_fake, {**base, "ChangeType": "delete_user", "UserID": "zhangwei"})
    assert Department.objects.get(external_id="4").parent.external_id == "2"
    assert Department.objects.get(external_id="3").name == "北京一组"
    assert list(Employee.objects.get(userid="wangfang").departments.values_list("name", flat=True)) == ["上海组"]
    lina = Employee.objects.get(userid="lina")
    assert lina.name == "李娜娜" and list(lina.departments.values_list("external_id", flat=True)) == ["4"]
    zhang = Employee.objects.get(userid="zhangwei")
    assert zhang.status == EmployeeStatus.DEPARTED
    # waiting for 离职继承: still theirs, never handed over automatically
    assert FollowRelation.objects.filter(employee=zhang, status="active").count() == CUSTOMERS
    from customers.models import Transfer

    assert not Transfer.objects.exists()
    deliver(wecom_fake, {**base, "ChangeType": "delete_party", "Id": 4})  # still used: kept
    assert Department.objects.filter(external_id="4").exists()
