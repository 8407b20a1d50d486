"""离职继承 / 在职继承 (DESIGN rule 12): what moves, what stays archived, merges, re-runs, bad input."""

from __future__ import annotations

import pytest

from customers.models import (
    FollowRelation,
    Message,
    Note,
    PersonalTagging,
    RelationStatus,
    TagEvent,
    Tagging,
    TagSource,
    Transfer,
    TransferOutcome,
)
from customers.transfers import transfer_preview, transfer_run, transfer_start
from org.actors import Actor
from org.models import Employee, EmployeeStatus
from tagportal.errors import Conflict, NotAllowed, ValidationFailed
from tags.models import PersonalTag
from tests.factories import CustomerFactory, EmployeeFactory, make_tag_group

pytestmark = pytest.mark.django_db


# ---------------------------------------------------------------- helpers


def portrait(departing, customer, *, remark="VIP 客户", tags=("高意向", "喜欢周末沟通"), notes=("已报价",)):
    """Give `departing` a full portrait of `customer`: relation with remark, personal tags, notes, chat."""
    FollowRelation.objects.update_or_create(
        customer=customer, employee=departing,
        defaults={"remark": remark, "description": f"{remark} 的描述", "add_way": 3, "state": "poster-1"},
    )
    for name in tags:
        tag, _ = PersonalTag.objects.get_or_create(owner=departing, name=name)
        PersonalTagging.objects.get_or_create(personal_tag=tag, customer=customer)
    for text in notes:
        Note.objects.create(customer=customer, author=departing, text=text)
    Message.objects.create(msgid=f"m-{customer.pk}-{departing.pk}", customer=customer, employee=departing,
                           direction="in", content="想买保险")
    return customer


def counts(customer) -> dict:
    """What a user would count on one customer."""
    return {
        "active": FollowRelation.objects.filter(customer=customer, status=RelationStatus.ACTIVE).count(),
        "relations": FollowRelation.objects.filter(customer=customer).count(),
        "ptaggings": PersonalTagging.objects.filter(customer=customer).count(),
        "notes": Note.objects.filter(customer=customer).count(),
        "messages": Message.objects.filter(customer=customer).count(),
        "tags": Tagging.objects.filter(customer=customer).count(),
    }


def relation(customer, employee) -> FollowRelation | None:
    return FollowRelation.objects.filter(customer=customer, employee=employee).first()


def personal_names(employee, customer) -> set[str]:
    return set(
        PersonalTagging.objects.filter(customer=customer, personal_tag__owner=employee)
        .values_list("personal_tag__name", flat=True)
    )


def run(actor, departing, inheritors, **kwargs) -> Transfer:
    transfer = transfer_start(actor=actor, from_employee=departing, to_employees=inheritors, **kwargs)
    transfer_run(transfer=transfer, job=transfer.job)
    transfer.refresh_from_db()
    return transfer


@pytest.fixture
def hr(db):
    return EmployeeFactory(userid="hr", name="人事", roles=["hr"])


@pytest.fixture
def hr_actor(hr):
    return Actor(employee=hr)


@pytest.fixture
def zhang(db):
    return EmployeeFactory(userid="zhangsan", name="张三")


@pytest.fixture
def li(db):
    return EmployeeFactory(userid="lisi", name="李四")


@pytest.fixture
def wang(db):
    return EmployeeFactory(userid="wangwu", name="王五")


# ---------------------------------------------------------------- keep the portrait


def test_keep_portrait_moves_relation_personal_tags_and_leaves_archive(hr_actor, zhang, li):
    customer = portrait(zhang, CustomerFactory())
    _group, (vip,) = make_tag_group("客户等级", tags=["VIP"])
    Tagging.objects.create(customer=customer, tag=vip)
    before = counts(customer)

    transfer = run(hr_actor, zhang, [li])

    archived, inherited = relation(customer, zhang), relation(customer, li)
    assert archived.status == RelationStatus.TRANSFERRED and archived.transferred_to == li
    assert archived.portrait_kept is True and archived.transferred_at is not None
    assert inherited.status == RelationStatus.ACTIVE
    assert (inherited.remark, inherited.description, inherited.add_way, inherited.state) == (
        "VIP 客户", "VIP 客户 的描述", 3, "poster-1")
    assert inherited.added_at == archived.added_at
    assert personal_names(li, customer) == {"高意向", "喜欢周末沟通"}
    assert personal_names(zhang, customer) == {"高意向", "喜欢周末沟通"}  # archived, never deleted
    after = counts(customer)
    assert after == {**before, "active": 1, "relations": 2, "ptaggings": before["ptaggings"] + 2}
    assert Tagging.objects.filter(customer=customer, tag=vip).exists()  # enterprise tags never move
    item = transfer.items.get()
    assert item.outcome == TransferOutcome.MOVED and item.detail["personal_tags"] == 2 and item.detail["notes"] == 1
    assert transfer.finished_at is not None


def test_departed_is_marked_and_can_no_longer_log_in(hr_actor, zhang, li, client):
    portrait(zhang, CustomerFactory())
    run(hr_actor, zhang, [li])
    zhang.refresh_from_db()
    assert zhang.status == EmployeeStatus.DEPARTED and not zhang.is_active and zhang.departed_at
    assert client.login(username="zhangsan", password="pass-1234") is False
    response = client.post("/login/", {"username": "zhangsan", "password": "pass-1234"})
    assert response.status_code == 200 and "_auth_user_id" not in client.session


def test_departed_cannot_act_through_api(hr_actor, zhang, li, key_api):
    customer = portrait(zhang, CustomerFactory())
    run(hr_actor, zhang, [li])
    response = key_api.get("/api/v1/customers/", {"employee": "zhangsan"})
    assert response.status_code == 403
    response = key_api.post(f"/api/v1/customers/{customer.pk}/notes/", {"employee": "zhangsan", "text": "x"},
                            format="json")
    assert response.status_code == 403
    assert Note.objects.filter(customer=customer).count() == 1


def test_every_personal_tag_addition_is_audited_with_source_transfer(hr, hr_actor, zhang, li):
    customer = portrait(zhang, CustomerFactory())
    transfer = run(hr_actor, zhang, [li])
    events = TagEvent.objects.filter(customer=customer, source=TagSource.TRANSFER)
    assert sorted(events.values_list("tag_name", flat=True)) == ["喜欢周末沟通", "高意向"]
    assert {e.personal_tag.owner_id for e in events} == {li.pk}
    assert {(e.action, e.actor_employee_id, e.job_id) for e in events} == {("add", hr.pk, transfer.job_id)}


def test_personal_tags_merge_by_name_case_insensitively(hr_actor, zhang, li):
    customer = portrait(zhang, CustomerFactory(), tags=("VIP", "weekend"))
    mine = PersonalTag.objects.create(owner=li, name="vip")
    preview = transfer_preview(actor=hr_actor, from_employee=zhang, to_employees=[li])
    assert preview.inheritors[0].personal_tags == 2 and preview.inheritors[0].conflicts == 1
    run(hr_actor, zhang, [li])
    assert PersonalTag.objects.filter(owner=li).count() == 2
    assert set(PersonalTagging.objects.filter(customer=customer, personal_tag__owner=li)
               .values_list("personal_tag_id", flat=True)) >= {mine.pk}
    assert personal_names(li, customer) == {"vip", "weekend"}


def test_inheritor_sees_notes_history_and_personal_tags_through_the_api(hr_actor, zhang, li, key_api):
    customer = portrait(zhang, CustomerFactory(), notes=("第一次拜访", "已报价"))
    run(hr_actor, zhang, [li])
    got = key_api.get(f"/api/v1/customers/{customer.pk}/", {"employee": "lisi"})
    assert got.status_code == 200
    assert {p["name"] if isinstance(p, dict) else p for p in got.json()["personal_tags"]} >= {"高意向"} or \
        len(got.json()["personal_tags"]) == 2
    notes = key_api.get(f"/api/v1/customers/{customer.pk}/notes/", {"employee": "lisi"})
    assert notes.status_code == 200
    assert {n["text"] for n in notes.json()["results"]} == {"第一次拜访", "已报价"}
    assert {n["author"] for n in notes.json()["results"]} == {"zhangsan"}
    messages = key_api.get(f"/api/v1/customers/{customer.pk}/messages/", {"employee": "lisi"})
    assert messages.status_code == 200 and len(messages.json()["results"]) == 1


# ---------------------------------------------------------------- without the portrait, then carried over


def test_without_portrait_only_the_relation_moves_and_a_rerun_carries_it_over(hr_actor, zhang, li):
    customer = portrait(zhang, CustomerFactory())
    before = counts(customer)
    run(hr_actor, zhang, [li], keep_portrait=False)

    inherited, archived = relation(customer, li), relation(customer, zhang)
    assert inherited.status == RelationStatus.ACTIVE and (inherited.remark, inherited.description) == ("", "")
    assert archived.remark == "VIP 客户" and archived.portrait_kept is False
    assert personal_names(li, customer) == set()
    assert personal_names(zhang, customer) == {"高意向", "喜欢周末沟通"}
    assert counts(customer) == {**before, "active": 1, "relations": 2}

    second = run(hr_actor, zhang, [li], keep_portrait=True, mark_departed=False)
    inherited.refresh_from_db()
    assert inherited.remark == "VIP 客户" and personal_names(li, customer) == {"高意向", "喜欢周末沟通"}
    assert relation(customer, zhang).portrait_kept is True
    assert second.items.get().detail["portrait"] == "carried_over"


# ---------------------------------------------------------------- merge


def test_inheritor_already_following_merges_into_one_relation(hr_actor, zhang, li):
    customer = portrait(zhang, CustomerFactory(), tags=("高意向",))
    FollowRelation.objects.create(customer=customer, employee=li, remark="", description="李四的描述")
    portrait(li, customer, remark="", tags=("高意向", "老客户"), notes=())
    FollowRelation.objects.filter(customer=customer, employee=li).update(description="李四的描述")
    before = counts(customer)

    transfer = run(hr_actor, zhang, [li])

    inherited = relation(customer, li)
    assert FollowRelation.objects.filter(customer=customer, employee=li).count() == 1
    assert inherited.remark == "VIP 客户"  # inheritor had none: the departed's is kept
    assert inherited.description == "李四的描述\nVIP 客户 的描述"
    assert personal_names(li, customer) == {"高意向", "老客户"}
    assert counts(customer) == {**before, "active": 1}  # no new relation, no new tagging
    assert transfer.items.get().outcome == TransferOutcome.MERGED


def test_merge_keeps_the_inheritors_remark(hr_actor, zhang, li):
    customer = portrait(zhang, CustomerFactory())
    FollowRelation.objects.create(customer=customer, employee=li, remark="李四的备注")
    run(hr_actor, zhang, [li])
    assert relation(customer, li).remark == "李四的备注"


def test_customer_coming_back_to_a_former_follower_reactivates_their_archive(hr_actor, zhang, li):
    customer = portrait(zhang, CustomerFactory())
    run(hr_actor, zhang, [li], mark_departed=False)
    run(hr_actor, li, [zhang], mark_departed=False)
    assert relation(customer, zhang).status == RelationStatus.ACTIVE
    assert relation(customer, zhang).transferred_to is None
    assert relation(customer, li).status == RelationStatus.TRANSFERRED
    assert FollowRelation.objects.filter(customer=customer).count() == 2


# ---------------------------------------------------------------- idempotent


def test_rerunning_a_transfer_changes_nothing(hr_actor, zhang, li, wang):
    customers = [portrait(zhang, CustomerFactory()) for _ in range(5)]
    run(hr_actor, zhang, [li, wang])
    after_first = [counts(c) for c in customers]
    relations = list(FollowRelation.objects.order_by("pk").values())
    events = TagEvent.objects.count()

    again = run(hr_actor, zhang, [li, wang], mark_departed=False)

    assert [counts(c) for c in customers] == after_first
    assert list(FollowRelation.objects.order_by("pk").values()) == relations
    assert TagEvent.objects.count() == events
    assert set(again.items.values_list("outcome", flat=True)) == {TransferOutcome.UNCHANGED}
    # each customer stayed with the inheritor it went to the first time
    assert {i.customer_id: i.to_employee_id for i in again.items.all()} == {
        c.pk: relation(c, zhang).transferred_to_id for c in customers}


def test_running_the_same_transfer_twice_settles_each_item_once(hr_actor, zhang, li):
    customer = portrait(zhang, CustomerFactory())
    transfer = transfer_start(actor=hr_actor, from_employee=zhang, to_employees=[li])
    transfer_run(transfer=transfer)
    assert transfer_run(transfer=transfer) == {}
    assert PersonalTagging.objects.filter(customer=customer, personal_tag__owner=li).count() == 2


# ---------------------------------------------------------------- several inheritors, chosen customers, on the job


def test_several_inheritors_share_customers_evenly_and_deterministically(hr_actor, zhang, li, wang):
    customers = [portrait(zhang, CustomerFactory(), tags=("A",), notes=()) for _ in range(7)]
    preview = transfer_preview(actor=hr_actor, from_employee=zhang, to_employees=[li, wang])
    assert [i.customers for i in preview.inheritors] == [4, 3]
    transfer = run(hr_actor, zhang, [li, wang])
    got = {i.customer_id: i.to_employee_id for i in transfer.items.all()}
    in_order = sorted(customers, key=lambda c: c.pk)
    assert got == {c.pk: (li.pk if n % 2 == 0 else wang.pk) for n, c in enumerate(in_order)}
    for c in customers:
        assert relation(c, Employee.objects.get(pk=got[c.pk])).status == RelationStatus.ACTIVE


def test_customers_chosen_per_inheritor(hr_actor, zhang, li, wang):
    a, b, c = (portrait(zhang, CustomerFactory(), tags=(), notes=()) for _ in range(3))
    transfer = run(hr_actor, zhang, [li, wang], customer_ids=[a.pk, b.pk], assignment={a.pk: wang, b.pk: wang})
    assert {i.customer_id: i.to_employee_id for i in transfer.items.all()} == {a.pk: wang.pk, b.pk: wang.pk}
    assert relation(c, zhang).status == RelationStatus.ACTIVE  # not chosen: untouched


def test_on_the_job_transfer_keeps_the_employee_active(hr_actor, zhang, li, client):
    a, b = portrait(zhang, CustomerFactory()), portrait(zhang, CustomerFactory(), tags=(), notes=())
    transfer = run(hr_actor, zhang, [li], customer_ids=[a.pk], mark_departed=False)
    zhang.refresh_from_db()
    assert zhang.status == EmployeeStatus.ACTIVE and zhang.is_active and not transfer.mark_departed
    assert relation(a, li).status == RelationStatus.ACTIVE
    assert relation(b, zhang).status == RelationStatus.ACTIVE
    assert client.login(username="zhangsan", password="pass-1234")


# ---------------------------------------------------------------- bad input: 4xx, nothing moved


def _nothing_moved(zhang):
    assert not Transfer.objects.exists()
    assert not FollowRelation.objects.filter(status=RelationStatus.TRANSFERRED).exists()
    zhang.refresh_from_db()
    assert zhang.status == EmployeeStatus.ACTIVE


@pytest.mark.parametrize("case", ["self", "departed", "none", "stranger_customer", "nothing_to_move"])
def test_bad_input_is_rejected_and_nothing_moves(hr_actor, zhang, li, case):
    customer = portrait(zhang, CustomerFactory())
    other = CustomerFactory()
    kwargs = {"to_employees": [li]}
    if case == "self":
        kwargs["to_employees"] = [zhang]
    elif case == "departed":
        gone = EmployeeFactory(userid="gone")
        gone.status = EmployeeStatus.DEPARTED
        gone.save()
        kwargs["to_employees"] = [li, gone]
    elif case == "none":
        kwargs["to_employees"] = []
    elif case == "stranger_customer":
        kwargs["customer_ids"] = [customer.pk, other.pk]
    elif case == "nothing_to_move":
        FollowRelation.objects.filter(employee=zhang).delete()
    with pytest.raises(ValidationFailed) as err:
        transfer_start(actor=hr_actor, from_employee=zhang, **kwargs)
    assert err.value.status_code == 400 and err.value.details
    _nothing_moved(zhang)


@pytest.mark.parametrize("roles", [["staff"], ["manager"], ["tag_admin"]])
def test_only_hr_or_enterprise_admin_may_transfer(zhang, li, roles):
    portrait(zhang, CustomerFactory())
    caller = EmployeeFactory(roles=roles)
    with pytest.raises(NotAllowed):
        transfer_start(actor=Actor(employee=caller), from_employee=zhang, to_employees=[li])
    _nothing_moved(zhang)


def test_enterprise_admin_may_transfer(zhang, li):
    portrait(zhang, CustomerFactory())
    boss = EmployeeFactory(roles=["enterprise_admin"])
    assert run(Actor(employee=boss), zhang, [li]).items.get().outcome == TransferOutcome.MOVED


def test_second_transfer_of_the_same_employee_while_one_runs_is_a_conflict(hr_actor, zhang, li, wang):
    portrait(zhang, CustomerFactory())
    first = transfer_start(actor=hr_actor, from_employee=zhang, to_employees=[li], mark_departed=False)
    with pytest.raises(Conflict):
        transfer_start(actor=hr_actor, from_employee=zhang, to_employees=[wang], mark_departed=False)
    assert Transfer.objects.get() == first
    assert transfer_preview(actor=hr_actor, from_employee=zhang, to_employees=[wang]).errors


def test_the_database_refuses_two_running_transfers_of_one_employee(hr, zhang):
    from django.db import IntegrityError, transaction

    Transfer.objects.create(from_employee=zhang, created_by_employee=hr)
    with pytest.raises(IntegrityError), transaction.atomic():
        Transfer.objects.create(from_employee=zhang, created_by_employee=hr)


def test_the_portable_path_gives_the_same_rows_as_the_sql_path(hr_actor, zhang, li, wang, monkeypatch):
    """SQLite (the embedded default) takes the bulk_create path; PostgreSQL one INSERT ... SELECT."""
    import customers.transfers as transfers

    first = [portrait(zhang, CustomerFactory(), tags=("VIP", "续保")) for _ in range(4)]
    second = [portrait(wang, CustomerFactory(), tags=("VIP", "续保")) for _ in range(4)]
    FollowRelation.objects.create(customer=first[0], employee=li, description="已有")
    FollowRelation.objects.create(customer=second[0], employee=li, description="已有")
    PersonalTag.objects.create(owner=li, name="vip")
    run(hr_actor, zhang, [li])
    monkeypatch.setattr(transfers, "SET_BASED_SQL", False)
    run(hr_actor, wang, [li])

    def shape(customers):
        return [(relation(c, li).remark.startswith("VIP"), relation(c, li).description.count("\n"),
                 personal_names(li, c), TagEvent.objects.filter(customer=c, source=TagSource.TRANSFER).count())
                for c in customers]

    assert shape(first) == shape(second)


def test_without_portrait_notes_and_chat_stay_archived_until_carried_over(hr_actor, zhang, li, key_api):
    customer = portrait(zhang, CustomerFactory(), notes=("张三的跟进",))
    Note.objects.create(customer=customer, author=li, text="李四自己的")
    run(hr_actor, zhang, [li], keep_portrait=False)

    def seen(path, who):
        response = key_api.get(f"/api/v1/customers/{customer.pk}/{path}/", {"employee": who} if who else {})
        assert response.status_code == 200
        return response.json()["results"]

    assert [n["text"] for n in seen("notes", "lisi")] == ["李四自己的"]
    assert seen("messages", "lisi") == []
    assert {n["text"] for n in seen("notes", "hr")} == {"张三的跟进", "李四自己的"}  # archived, not lost
    assert len(seen("notes", None)) == 2

    run(hr_actor, zhang, [li], keep_portrait=True, mark_departed=False)
    assert {n["text"] for n in seen("notes", "lisi")} == {"张三的跟进", "李四自己的"}
    assert len(seen("messages", "lisi")) == 1


def test_rerun_after_the_inheritor_handed_the_customer_on_changes_nothing(hr_actor, zhang, li, wang):
    customer = portrait(zhang, CustomerFactory())
    run(hr_actor, zhang, [li], keep_portrait=False)
    run(hr_actor, li, [wang], mark_departed=False)
    before = counts(customer)
    again = run(hr_actor, zhang, [li], keep_portrait=True, mark_departed=False)
    assert again.items.get().outcome == TransferOutcome.UNCHANGED
    assert counts(customer) == before
    assert relation(customer, li).status == RelationStatus.TRANSFERRED
    assert relation(customer, wang).status == RelationStatus.ACTIVE
    assert personal_names(li, customer) == set()
