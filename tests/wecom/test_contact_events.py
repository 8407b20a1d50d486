"""change_external_contact events end to end: delivered to /wecom/callback/, processed with the real
client against the simulator; customers, relations and tags change as a user of the portal sees.
Also: each event once, in order per customer, failures kept and retried, never lost."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from customers.models import Customer, FollowRelation, RelationStatus, TagAction, TagEvent, TagSource
from customers.services import customer_tags_update
from org.actors import Actor
from tagportal.errors import Conflict
from tests.factories import EmployeeFactory, make_tag_group
from tests.wecom.conftest import post_event
from wecom import tasks
from wecom.models import EventStatus, WeComEvent
from wecom.services import wecom_event_retry, wecom_events_process

pytestmark = pytest.mark.django_db


@pytest.fixture
def zhangwei(db):
    return EmployeeFactory(userid="zhangwei", name="张伟")


@pytest.fixture
def lina(db):
    return EmployeeFactory(userid="lina", name="李娜")


@pytest.fixture
def wecom_tags(wecom_fake):
    """Portal tags mapped to WeCom's (external_id), and the same in the simulated corp."""
    from wecom.simulator import CorpTag, CorpTagGroup

    group, (vip, normal) = make_tag_group("客户等级", tags=["VIP客户", "普通客户"])
    stage, (hot, won) = make_tag_group("转化阶段", single_choice=True, tags=["高意向", "已成交"])
    for tag, ext in ((vip, "etVIP"), (normal, "etNORMAL"), (hot, "etHOT"), (won, "etWON")):
        tag.external_id = ext
        tag.save(update_fields=["external_id"])
    wecom_fake.state.tag_groups["egLEVEL"] = CorpTagGroup(
        group_id="egLEVEL", group_name="客户等级", tag=[CorpTag(id="etVIP", name="VIP客户"),
                                                    CorpTag(id="etNORMAL", name="普通客户"),
                                                    CorpTag(id="etUNMAPPED", name="未映射")])
    wecom_fake.state.tag_groups["egSTAGE"] = CorpTagGroup(
        group_id="egSTAGE", group_name="转化阶段",
        tag=[CorpTag(id="etHOT", name="高意向"), CorpTag(id="etWON", name="已成交")])
    return {"vip": vip, "normal": normal, "hot": hot, "won": won}


def wtag(tag_id: str, group: str = "客户等级", name: str = "") -> dict:
    return {"group_name": group, "tag_name": name or tag_id, "tag_id": tag_id, "type": 1}


def deliver(sim, fields: dict) -> None:
    response = post_event(sim, fields)
    assert response.status_code == 200 and response.content == b"success"
    wecom_events_process()


def add(sim, employee: str, external_userid: str, **kwargs) -> dict:
    contact, follower, code = sim.state.add_contact(userid=employee, external_userid=external_userid, **kwargs)
    return sim.add_contact_event(contact, follower, code)


def test_a_customer_who_adds_an_employee_arrives_with_the_relation(wecom_fake, zhangwei):
    created = 1767225600  # 2026-01-01 00:00 UTC
    deliver(wecom_fake, add(wecom_fake, "zhangwei", "wmWANG", name="王女士", gender=2, type=2, corp_name="示例科技",
                            remark="王总-展会", description="关注价格", state="expo2026", add_way=1,
                            createtime=created))
    customer = Customer.objects.get(external_userid="wmWANG")
    assert (customer.name, customer.gender, customer.type, customer.corp_name) == ("王女士", 2, 2, "示例科技")
    relation = FollowRelation.objects.get(customer=customer, employee=zhangwei)
    assert (relation.remark, relation.description, relation.state, relation.add_way) == (
        "王总-展会", "关注价格", "expo2026", 1)
    assert relation.added_at == datetime.fromtimestamp(created, tz=UTC)
    assert relation.status == RelationStatus.ACTIVE
    event = WeComEvent.objects.get()
    assert (event.status, event.attempts, event.error) == (EventStatus.DONE, 1, "")
    assert [c.params["external_userid"] for c in wecom_fake.calls("externalcontact/get")] == ["wmWANG"]


def test_processing_is_queued_when_the_callback_commits(wecom_fake, zhangwei, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        post_event(wecom_fake, add(wecom_fake, "zhangwei", "wmQUEUED", name="钱先生"))
    assert Customer.objects.filter(external_userid="wmQUEUED").exists()
    assert WeComEvent.objects.get().status == EventStatus.DONE


def test_half_added_and_edited_relations(wecom_fake, zhangwei):
    contact, follower, _ = wecom_fake.state.add_contact(userid="zhangwei", external_userid="wmHALF", name="半添加")
    deliver(wecom_fake, wecom_fake.add_contact_event(contact, follower, change_type="add_half_external_contact"))
    assert FollowRelation.objects.get(customer__external_userid="wmHALF").status == RelationStatus.ACTIVE
    follower.remark, follower.description = "新备注", "新描述"
    deliver(wecom_fake, wecom_fake.contact_event("edit_external_contact", userid="zhangwei", external_userid="wmHALF"))
    relation = FollowRelation.objects.get(customer__external_userid="wmHALF")
    assert (relation.remark, relation.description) == ("新备注", "新描述")


def test_tags_wecom_reports_are_applied_with_source_wecom(wecom_fake, zhangwei, wecom_tags):
    deliver(wecom_fake, add(wecom_fake, "zhangwei", "wmTAGS", tags=[
        wtag("etVIP"), wtag("etUNMAPPED"), wtag("etHOT", "转化阶段"), wtag("etWON", "转化阶段")]))
    customer = Customer.objects.get(external_userid="wmTAGS")
    # unmapped tags are skipped; of a single-choice group only WeCom's last tag is kept
    assert set(customer.tags.all()) == {wecom_tags["vip"], wecom_tags["won"]}
    events = TagEvent.objects.filter(customer=customer)
    assert {(e.tag_id, e.action, e.source) for e in events} == {
        (wecom_tags["vip"].pk, TagAction.ADD, TagSource.WECOM), (wecom_tags["won"].pk, TagAction.ADD, TagSource.WECOM)}


def test_edit_removes_what_wecom_removed_but_keeps_portal_tags_not_yet_pushed(wecom_fake, zhangwei, wecom_tags):
    deliver(wecom_fake, add(wecom_fake, "zhangwei", "wmEDIT", tags=[wtag("etVIP")]))
    customer = Customer.objects.get(external_userid="wmEDIT")
    customer_tags_update(actor=Actor(label="crm"), customer=customer, add=[wecom_tags["normal"].pk],
                         source=TagSource.API)
    follower = wecom_fake.state.contacts["wmEDIT"].follower("zhangwei")
    follower.tags = [wtag("etHOT", "转化阶段")]  # VIP removed in WeCom, 高意向 added
    deliver(wecom_fake, wecom_fake.contact_event("edit_external_contact", userid="zhangwei", external_userid="wmEDIT"))
    assert set(customer.tags.all()) == {wecom_tags["normal"], wecom_tags["hot"]}
    removal = TagEvent.objects.get(customer=customer, action=TagAction.REMOVE)
    assert (removal.tag_id, removal.source) == (wecom_tags["vip"].pk, TagSource.WECOM)


def test_employee_deletes_the_customer_relation_kept_as_deleted(wecom_fake, zhangwei, lina):
    deliver(wecom_fake, add(wecom_fake, "zhangwei", "wmDEL"))
    deliver(wecom_fake, add(wecom_fake, "lina", "wmDEL"))
    wecom_fake.state.remove_follower(userid="zhangwei", external_userid="wmDEL")
    deliver(wecom_fake, wecom_fake.contact_event("del_external_contact", userid="zhangwei", external_userid="wmDEL",
                                                 CreateTime=1767225600))
    relations = {r.employee.userid: r for r in FollowRelation.objects.filter(customer__external_userid="wmDEL")}
    assert relations["zhangwei"].status == RelationStatus.DELETED
    assert relations["zhangwei"].ended_at == datetime.fromtimestamp(1767225600, tz=UTC)
    assert relations["lina"].status == RelationStatus.ACTIVE


def test_customer_deletes_the_employee_relation_lost_then_comes_back(wecom_fake, zhangwei):
    deliver(wecom_fake, add(wecom_fake, "zhangwei", "wmLOST", remark="老客户"))
    wecom_fake.state.remove_follower(userid="zhangwei", external_userid="wmLOST")
    deliver(wecom_fake, wecom_fake.contact_event("del_follow_user", userid="zhangwei", external_userid="wmLOST"))
    relation = FollowRelation.objects.get(customer__external_userid="wmLOST")
    assert relation.status == RelationStatus.LOST and relation.ended_at is not None
    assert relation.remark == "老客户"  # history kept
    deliver(wecom_fake, add(wecom_fake, "zhangwei", "wmLOST", remark="回来了"))
    relation.refresh_from_db()
    assert (relation.status, relation.ended_at, relation.remark) == (RelationStatus.ACTIVE, None, "回来了")


def test_a_contact_wecom_no_longer_knows_changes_nothing(wecom_fake, zhangwei):
    deliver(wecom_fake, wecom_fake.contact_event("add_external_contact", userid="zhangwei", external_userid="wmGONE"))
    assert not Customer.objects.filter(external_userid="wmGONE").exists()
    assert WeComEvent.objects.get().status == EventStatus.DONE


# ---------------------------------------------------------------- once, in order, never lost


def test_failed_event_keeps_its_error_and_holds_back_that_customer_only(wecom_fake, settings, zhangwei):
    settings.WECOM_EVENT_RETRY_SECONDS = 60
    deliver(wecom_fake, add(wecom_fake, "newbie", "wmWAIT"))  # employee not in the portal yet
    failed = WeComEvent.objects.get()
    assert failed.status == EventStatus.FAILED and failed.attempts == 1
    assert "newbie" in failed.error and failed.next_attempt_at is not None
    wecom_fake.state.remove_follower(userid="newbie", external_userid="wmWAIT")
    deliver(wecom_fake, wecom_fake.contact_event("del_follow_user", userid="newbie", external_userid="wmWAIT"))
    deliver(wecom_fake, add(wecom_fake, "zhangwei", "wmOTHER"))
    statuses = dict(WeComEvent.objects.values_list("external_userid", "status").order_by("id"))
    later = WeComEvent.objects.filter(change_type="del_follow_user").get()
    assert later.status == EventStatus.PENDING  # waits behind the failed event of the same customer
    assert statuses["wmOTHER"] == EventStatus.DONE
    assert Customer.objects.filter(external_userid="wmOTHER").exists()


def test_retry_from_the_status_page_processes_in_order(wecom_fake, settings, zhangwei):
    settings.WECOM_EVENT_RETRY_SECONDS = 3600
    deliver(wecom_fake, add(wecom_fake, "newbie", "wmRETRY"))
    wecom_fake.state.remove_follower(userid="newbie", external_userid="wmRETRY")
    deliver(wecom_fake, wecom_fake.contact_event("del_follow_user", userid="newbie", external_userid="wmRETRY"))
    wecom_fake.state.add_contact(userid="newbie", external_userid="wmRETRY")  # WeCom still answers the contact
    EmployeeFactory(userid="newbie")
    failed = WeComEvent.objects.get(status=EventStatus.FAILED)
    wecom_event_retry(event=failed)
    wecom_events_process()
    assert list(WeComEvent.objects.order_by("id").values_list("status", "attempts")) == [
        (EventStatus.DONE, 2), (EventStatus.DONE, 1)]
    assert FollowRelation.objects.get(customer__external_userid="wmRETRY").status == RelationStatus.LOST
    with pytest.raises(Conflict):
        wecom_event_retry(event=failed)


def test_wecom_busy_is_retried_with_backoff_by_the_periodic_task(wecom_fake, settings, zhangwei):
    settings.WECOM_EVENT_RETRY_SECONDS = 0  # due at once
    wecom_fake.fail("externalcontact/get", -1, times=4)  # the client's own 3 retries are not enough
    deliver(wecom_fake, add(wecom_fake, "zhangwei", "wmBUSY"))
    event = WeComEvent.objects.get()
    assert event.status == EventStatus.FAILED and "-1" in event.error
    assert tasks.retry_events() == 1
    event.refresh_from_db()
    assert (event.status, event.attempts) == (EventStatus.DONE, 2)
    assert Customer.objects.filter(external_userid="wmBUSY").exists()


def test_backoff_grows_and_a_given_up_event_no_longer_blocks(wecom_fake, settings, zhangwei):
    settings.WECOM_EVENT_RETRY_SECONDS = 30
    settings.WECOM_EVENT_MAX_ATTEMPTS = 2
    deliver(wecom_fake, add(wecom_fake, "ghost", "wmGHOST"))
    event = WeComEvent.objects.get()
    first_delay = (event.next_attempt_at - event.received_at).total_seconds()
    assert 25 <= first_delay <= 40
    WeComEvent.objects.filter(pk=event.pk).update(next_attempt_at=event.received_at)  # make it due
    wecom_events_process()
    event.refresh_from_db()
    assert (event.status, event.attempts, event.next_attempt_at) == (EventStatus.FAILED, 2, None)  # given up
    wecom_fake.state.remove_follower(userid="ghost", external_userid="wmGHOST")
    deliver(wecom_fake, wecom_fake.contact_event("del_follow_user", userid="ghost", external_userid="wmGHOST"))
    assert WeComEvent.objects.get(change_type="del_follow_user").status == EventStatus.DONE
    assert WeComEvent.objects.filter(status=EventStatus.FAILED).count() == 1  # kept, never lost


def test_each_event_is_processed_once(wecom_fake, zhangwei, wecom_tags):
    deliver(wecom_fake, add(wecom_fake, "zhangwei", "wmONCE", tags=[wtag("etVIP")]))
    wecom_events_process()
    tasks.retry_events()
    assert len(wecom_fake.calls("externalcontact/get")) == 1
    assert TagEvent.objects.filter(customer__external_userid="wmONCE").count() == 1


def test_unknown_events_are_stored_and_marked_nothing_to_do(wecom_fake):
    deliver(wecom_fake, {"Event": "some_future_event", "Foo": "bar"})
    assert WeComEvent.objects.get().status == EventStatus.IGNORED


@pytest.mark.django_db(transaction=True)
def test_tags_from_wecom_are_never_echoed_back(wecom_fake, zhangwei, wecom_tags):
    from wecom.outbox import outbox_collect, outbox_push

    deliver(wecom_fake, add(wecom_fake, "zhangwei", "wmECHO", tags=[wtag("etVIP")]))
    customer = Customer.objects.get(external_userid="wmECHO")
    assert list(customer.tags.all()) == [wecom_tags["vip"]]
    customer_tags_update(actor=Actor(label="crm"), customer=customer, add=[wecom_tags["hot"].pk],
                         source=TagSource.API)  # a portal change: this one must reach WeCom
    outbox_collect()
    outbox_push()
    sent = [c.body for c in wecom_fake.calls("externalcontact/mark_tag")]
    assert sent and all("etVIP" not in (body.get("add_tag") or []) for body in sent)
    assert any("etHOT" in (body.get("add_tag") or []) for body in sent)


def test_an_edit_never_brings_back_a_relation_handed_over_in_the_portal(wecom_fake, zhangwei, lina):
    deliver(wecom_fake, add(wecom_fake, "zhangwei", "wmMOVED", remark="张伟的客户"))
    FollowRelation.objects.filter(customer__external_userid="wmMOVED").update(
        status=RelationStatus.TRANSFERRED, transferred_to=lina)  # 在职继承 done in the portal
    follower = wecom_fake.state.contacts["wmMOVED"].follower("zhangwei")  # WeCom still lists him for 24 h
    follower.remark = "改了备注"
    deliver(wecom_fake, wecom_fake.contact_event("edit_external_contact", userid="zhangwei", external_userid="wmMOVED"))
    relation = FollowRelation.objects.get(customer__external_userid="wmMOVED", employee=zhangwei)
    assert (relation.status, relation.remark) == (RelationStatus.TRANSFERRED, "张伟的客户")
    assert WeComEvent.objects.filter(status=EventStatus.DONE).count() == 2


def test_a_departed_employees_edit_from_wecom_changes_nothing_and_holds_nothing_back(wecom_fake, zhangwei, lina):
    """离职: zhangwei has left but WeCom still lists his relation (it waits for 离职继承) and sends an
    edit for it. The event is done without touching the relation, and the customer's next event (lina
    adds them) is not held back behind it."""
    deliver(wecom_fake, add(wecom_fake, "zhangwei", "wmLEFT", remark="张伟的客户"))
    zhangwei.status = "departed"
    zhangwei.save()
    wecom_fake.state.contacts["wmLEFT"].follower("zhangwei").remark = "离职后改的"
    deliver(wecom_fake, wecom_fake.contact_event("edit_external_contact", userid="zhangwei", external_userid="wmLEFT"))
    deliver(wecom_fake, add(wecom_fake, "lina", "wmLEFT"))
    assert list(WeComEvent.objects.order_by("id").values_list("status", flat=True)) == [EventStatus.DONE] * 3
    relations = dict(FollowRelation.objects.filter(customer__external_userid="wmLEFT")
                     .values_list("employee__userid", "remark"))
    assert relations == {"zhangwei": "张伟的客户", "lina": ""}
