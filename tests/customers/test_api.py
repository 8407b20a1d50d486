"""`customers/` on the API: filters and `employee=` scoping, the tags endpoint with every rule,
upsert by external_userid, notes and messages; errors in the API's shape with the offending ids."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from customers.models import Customer, FollowRelation, Message, Note, PersonalTagging, TagEvent, Tagging
from tags.models import PersonalTag
from tests.conftest import as_employee
from tests.customers.world import world_fixture  # noqa: F401
from tests.factories import CustomerFactory, make_api_client

pytestmark = pytest.mark.django_db
URL = "/api/v1/customers/"


def ids(response) -> set[int]:
    assert response.status_code == 200, response.content
    return {row["id"] for row in response.json()["results"]}


def rows(customers) -> set[int]:
    return {c.pk for c in customers}


def counts():
    return (Customer.objects.count(), FollowRelation.objects.count(), Tagging.objects.count(),
            PersonalTagging.objects.count(), TagEvent.objects.count(), Note.objects.count())


# ---------------------------------------------------------------- list and scoping


def test_list_fields(world, crm):
    Tagging.objects.create(customer=world.c_staff, tag=world.vip)
    FollowRelation.objects.filter(customer=world.c_staff).update(remark="王总", state="expo")
    row = next(r for r in crm.get(URL).json()["results"] if r["id"] == world.c_staff.pk)
    assert row["external_userid"] == world.c_staff.external_userid
    assert row["tags"] == [world.vip.pk] and row["personal_tags"] == []
    [follower] = row["followers"]
    assert follower["employee"] == "zhangsan" and follower["remark"] == "王总" and follower["state"] == "expo"
    assert {"description", "added_at"} <= set(follower)


def test_employee_param_scopes_customers_and_tags(world, crm):
    Tagging.objects.create(customer=world.c_shared, tag=world.maintenance)
    Tagging.objects.create(customer=world.c_shared, tag=world.vip)
    assert ids(crm.get(URL)) == rows([world.c_staff, world.c_team, world.c_after, world.c_manager, world.c_shared])
    assert ids(crm.get(URL, {"employee": "boss"})) == rows([world.c_staff, world.c_manager, world.c_shared])
    shared = crm.get(f"{URL}{world.c_shared.pk}/", {"employee": "boss"}).json()
    assert shared["tags"] == [world.vip.pk]  # 保养到期 is scoped to 售后部
    shared = crm.get(f"{URL}{world.c_shared.pk}/", {"employee": "wangwu"}).json()
    assert sorted(shared["tags"]) == sorted([world.vip.pk, world.maintenance.pk])


def test_customer_out_of_reach_is_404(world, crm):
    response = crm.get(f"{URL}{world.c_team.pk}/", {"employee": "zhangsan"})
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
    assert as_employee(world.staff).get(f"{URL}{world.c_team.pk}/").status_code == 404


def test_personal_tags_only_the_acting_employees(world, crm):
    mine = PersonalTag.objects.create(owner=world.staff, name="家长决策")
    theirs = PersonalTag.objects.create(owner=world.after_staff, name="关注售后")
    PersonalTagging.objects.create(customer=world.c_shared, personal_tag=mine)
    PersonalTagging.objects.create(customer=world.c_shared, personal_tag=theirs)
    assert crm.get(f"{URL}{world.c_shared.pk}/", {"employee": "zhangsan"}).json()["personal_tags"] == [mine.pk]
    assert crm.get(f"{URL}{world.c_shared.pk}/").json()["personal_tags"] == []
    assert as_employee(world.admin).get(f"{URL}{world.c_shared.pk}/").json()["personal_tags"] == []


def test_filters(world, crm):
    for customer in (world.c_staff, world.c_shared, world.c_team):
        Tagging.objects.create(customer=customer, tag=world.vip)
    Tagging.objects.create(customer=world.c_staff, tag=world.hot)
    Tagging.objects.create(customer=world.c_shared, tag=world.won)
    q = {"tags_all": f"{world.vip.pk}", "tags_none": f"{world.won.pk}"}
    assert ids(crm.get(URL, q)) == rows([world.c_staff, world.c_team])
    assert ids(crm.get(URL, {**q, "employee": "boss"})) == rows([world.c_staff])
    assert ids(crm.get(URL, {"tags_any": f"{world.hot.pk},{world.won.pk}"})) == rows([world.c_staff, world.c_shared])
    assert ids(crm.get(URL, {"follower": "wangwu"})) == rows([world.c_after, world.c_shared])
    assert ids(crm.get(URL, {"department": world.sales.pk})) == rows([world.c_staff, world.c_shared, world.c_manager])
    assert ids(crm.get(URL, {"external_userid": world.c_team.external_userid})) == rows([world.c_team])
    assert ids(crm.get(URL, {"q": "售后"})) == rows([world.c_after])
    FollowRelation.objects.filter(customer=world.c_after).update(state="expo")
    assert ids(crm.get(URL, {"state": "expo"})) == rows([world.c_after])
    Customer.objects.filter(pk=world.c_after.pk).update(updated_at=timezone.now() + dt.timedelta(days=1))
    since = (timezone.now() + dt.timedelta(hours=1)).isoformat()
    assert ids(crm.get(URL, {"updated_since": since})) == rows([world.c_after])


def test_bad_filter_is_400_with_the_offending_value(world, crm):
    response = crm.get(URL, {"tags_all": "1,abc"})
    assert response.status_code == 400
    assert response.json()["error"]["details"] == {"tags_all": ["abc"]}
    response = crm.get(URL, {"tags_all": f"{world.maintenance.pk}", "employee": "boss"})
    assert response.status_code == 400 and response.json()["error"]["details"]["tags"] == [world.maintenance.pk]


def test_cursor_pages_newest_first_without_count(world, crm):
    for _ in range(5):
        CustomerFactory()
    seen, url = [], URL + "?page_size=4"
    with CaptureQueriesContext(connection) as ctx:
        while url:
            body = crm.get(url).json()
            assert set(body) == {"results", "next"}
            seen += [r["id"] for r in body["results"]]
            url = body["next"]
    assert seen == sorted(seen, reverse=True) and len(seen) == Customer.objects.count() == 10
    assert not any("COUNT(" in q["sql"].upper() for q in ctx.captured_queries)


def test_list_queries_do_not_grow_with_rows(world, crm):
    def n_queries():
        with CaptureQueriesContext(connection) as ctx:
            assert crm.get(URL, {"employee": "boss", "page_size": 100}).status_code == 200
        return len(ctx.captured_queries)

    n_queries()  # the key's last_used_at is stamped on first use
    few = n_queries()
    for _ in range(20):
        c = CustomerFactory(followers=[world.staff, world.manager])
        Tagging.objects.create(customer=c, tag=world.vip)
    assert n_queries() == few


# ---------------------------------------------------------------- tags endpoint


def test_tags_endpoint_answers_tags_as_the_caller_sees_them(world, crm):
    Tagging.objects.create(customer=world.c_shared, tag=world.maintenance)
    Tagging.objects.create(customer=world.c_shared, tag=world.first_contact)
    mine = PersonalTag.objects.create(owner=world.staff, name="家长决策")
    response = crm.post(f"{URL}{world.c_shared.pk}/tags/", {
        "employee": "zhangsan", "add": [world.vip.pk, world.hot.pk], "personal_add": [mine.pk]}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert sorted(body["tags"]) == sorted([world.vip.pk, world.hot.pk])  # 保养到期 hidden, 初次接触 replaced
    assert body["personal_tags"] == [mine.pk]
    assert Tagging.objects.filter(customer=world.c_shared, tag=world.maintenance).exists()
    assert set(TagEvent.objects.values_list("source", flat=True)) == {"api"}
    assert TagEvent.objects.filter(actor_client=world.client, actor_employee=world.staff).count() == 4


def test_session_edits_are_audited_as_manual(world):
    response = as_employee(world.staff).post(f"{URL}{world.c_staff.pk}/tags/", {"add": [world.vip.pk]}, format="json")
    assert response.status_code == 200
    event = TagEvent.objects.get()
    assert event.source == "manual" and event.actor_employee == world.staff and event.actor_client is None


@pytest.mark.parametrize(
    "case, status, code",
    [
        ("unknown", 400, "unknown_tags"),
        ("scoped_elsewhere", 400, "unknown_tags"),
        ("locked", 403, "locked"),
        ("single_choice_twice", 400, "single_choice"),
        ("someone_elses_personal", 400, "unknown_personal_tags"),
        ("personal_on_unfollowed", 400, "not_follower"),
        ("not_a_list", 400, "invalid"),
    ],
)
def test_tags_endpoint_bad_input_is_4xx_with_ids_and_nothing_written(world, crm, case, status, code):
    theirs = PersonalTag.objects.create(owner=world.after_staff, name="关注售后")
    own = PersonalTag.objects.create(owner=world.manager, name="爱喝茶")
    customer, body = world.c_staff, {"employee": "boss"}
    offending = None
    if case == "unknown":
        body["add"], offending = [world.vip.pk, 424242], [424242]
    elif case == "scoped_elsewhere":
        body["add"], offending = [world.maintenance.pk], [world.maintenance.pk]
    elif case == "locked":
        body["add"], offending = [world.key_account.pk], [world.key_account.pk]
    elif case == "single_choice_twice":
        body["add"], offending = [world.hot.pk, world.won.pk], sorted([world.hot.pk, world.won.pk])
    elif case == "someone_elses_personal":
        body["personal_add"] = [theirs.pk]
    elif case == "personal_on_unfollowed":
        body["personal_add"] = [own.pk]
    else:
        body["add"] = world.vip.pk
    before = counts()
    response = crm.post(f"{URL}{customer.pk}/tags/", body, format="json")
    assert response.status_code == status, response.content
    error = response.json()["error"]
    assert error["code"] == code
    if offending:
        assert sorted(error["details"]["tags"]) == offending
    if case == "someone_elses_personal":
        assert error["details"]["personal_tags"] == [theirs.pk]
    assert counts() == before


def test_tags_endpoint_customer_out_of_reach_is_404(world, crm):
    before = counts()
    response = crm.post(f"{URL}{world.c_team.pk}/tags/", {"employee": "zhangsan", "add": [world.vip.pk]},
                        format="json")
    assert response.status_code == 404
    assert counts() == before


def test_read_only_key_cannot_tag(world):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_api_client('bi', read_only=True)[1]}")
    assert client.get(URL).status_code == 200
    assert client.post(f"{URL}{world.c_staff.pk}/tags/", {"add": [world.vip.pk]}, format="json").status_code == 403
    assert not Tagging.objects.exists()


def test_enterprise_client_may_apply_locked_tags(world, crm):
    response = crm.post(f"{URL}{world.c_staff.pk}/tags/", {"add": [world.key_account.pk]}, format="json")
    assert response.status_code == 200 and response.json()["tags"] == [world.key_account.pk]


def test_hidden_tag_survives_an_api_edit_by_a_manager(world, crm):
    Tagging.objects.create(customer=world.c_shared, tag=world.maintenance)
    Tagging.objects.create(customer=world.c_shared, tag=world.potential)
    response = crm.post(f"{URL}{world.c_shared.pk}/tags/", {
        "employee": "boss", "add": [world.vip.pk], "remove": [world.potential.pk]}, format="json")
    assert response.json()["tags"] == [world.vip.pk]
    assert set(Tagging.objects.filter(customer=world.c_shared).values_list("tag_id", flat=True)) == {
        world.vip.pk, world.maintenance.pk}


# ---------------------------------------------------------------- upsert


def test_upsert_creates_then_updates_followers_named_only(world, crm):
    body = {"external_userid": "wmCRM001", "name": "刘备", "corp_name": "蜀汉",
            "followers": [{"employee": "zhangsan", "remark": "刘总", "state": "expo"},
                          {"employee": "wangwu", "description": "售后对接"}]}
    response = crm.post(URL, body, format="json")
    assert response.status_code == 201, response.content
    created = response.json()
    assert {f["employee"] for f in created["followers"]} == {"zhangsan", "wangwu"}

    response = crm.post(URL, {"external_userid": "wmCRM001", "name": "刘玄德",
                              "followers": [{"employee": "zhangsan", "remark": "玄德"}]}, format="json")
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == created["id"] and body["name"] == "刘玄德" and body["corp_name"] == "蜀汉"
    followers = {f["employee"]: f for f in body["followers"]}
    assert followers["zhangsan"]["remark"] == "玄德" and followers["zhangsan"]["state"] == "expo"
    assert followers["wangwu"]["description"] == "售后对接"  # not named: left alone
    assert Customer.objects.filter(external_userid="wmCRM001").count() == 1


@pytest.mark.parametrize("external_userid", [None, "", "has space", "x" * 65, 12345, "中文"])
def test_upsert_without_a_valid_external_userid_is_400(world, crm, external_userid):
    body = {"name": "无名"}
    if external_userid is not None:
        body["external_userid"] = external_userid
    before = counts()
    response = crm.post(URL, body, format="json")
    assert response.status_code == 400
    assert "external_userid" in response.json()["error"]["details"]
    assert counts() == before


def test_upsert_with_unknown_follower_is_400_and_writes_nothing(world, crm):
    before = counts()
    response = crm.post(URL, {"external_userid": "wmX", "followers": [{"employee": "nobody"}]}, format="json")
    assert response.status_code == 400
    assert "followers" in response.json()["error"]["details"]
    assert counts() == before


def test_upsert_of_a_customer_out_of_reach_is_404(world, crm):
    response = crm.post(URL, {"external_userid": world.c_team.external_userid, "name": "改名",
                              "employee": "zhangsan"}, format="json")
    assert response.status_code == 404
    world.c_team.refresh_from_db()
    assert world.c_team.name == "一组的客户"


def test_staff_may_create_customers_for_themselves_only(world):
    client = as_employee(world.staff)
    ok = client.post(URL, {"external_userid": "wmMine", "followers": [{"employee": "zhangsan"}]}, format="json")
    assert ok.status_code == 201
    other = client.post(URL, {"external_userid": "wmTheirs", "followers": [{"employee": "wangwu"}]}, format="json")
    assert other.status_code == 400
    assert not Customer.objects.filter(external_userid="wmTheirs").exists()


# ---------------------------------------------------------------- notes and messages


def test_notes_list_and_create(world, crm):
    url = f"{URL}{world.c_staff.pk}/notes/"
    response = crm.post(url, {"text": "  电话沟通，约周六到店  ", "employee": "zhangsan"}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["author"] == "zhangsan" and response.json()["text"] == "电话沟通，约周六到店"
    listed = crm.get(url).json()["results"]
    assert [n["text"] for n in listed] == ["电话沟通，约周六到店"]


@pytest.mark.parametrize("body", [{"text": "x"}, {"text": "", "employee": "zhangsan"},
                                  {"text": 5, "employee": "zhangsan"}])
def test_bad_notes_are_400(world, crm, body):
    response = crm.post(f"{URL}{world.c_staff.pk}/notes/", body, format="json")
    assert response.status_code == 400
    assert not Note.objects.exists()


def test_note_on_customer_out_of_reach_is_404(world, crm):
    response = crm.post(f"{URL}{world.c_team.pk}/notes/", {"text": "hi", "employee": "zhangsan"}, format="json")
    assert response.status_code == 404 and not Note.objects.exists()


def test_messages_paged_newest_first(world, crm):
    now = timezone.now()
    for i in range(5):
        Message.objects.create(msgid=f"m{i}", customer=world.c_staff, employee=world.staff, content=f"第{i}条 价格",
                               direction="in" if i % 2 else "out", sent_at=now - dt.timedelta(hours=i))
    first = crm.get(f"{URL}{world.c_staff.pk}/messages/", {"page_size": 3}).json()
    assert [m["msgid"] for m in first["results"]] == ["m0", "m1", "m2"]
    assert first["results"][1] == {"msgid": "m1", "employee": "zhangsan", "direction": "in", "content": "第1条 价格",
                                   "sent_at": first["results"][1]["sent_at"]}
    second = crm.get(first["next"]).json()
    assert [m["msgid"] for m in second["results"]] == ["m3", "m4"] and second["next"] is None
    assert crm.get(f"{URL}{world.c_team.pk}/messages/", {"employee": "zhangsan"}).status_code == 404


@pytest.mark.parametrize("bad", [{"type": 7}, {"gender": "男"}, {"crm_fields": [1, 2]}, {"name": 5},
                                 {"avatar": "not a url"}, {"followers": "zhangsan"},
                                 {"followers": [{"employee": "zhangsan", "added_at": "yesterday"}]}])
def test_upsert_bad_fields_are_400_and_nothing_written(world, crm, bad):
    before = counts()
    response = crm.post(URL, {"external_userid": "wmBad", **bad}, format="json")
    assert response.status_code == 400, response.content
    assert counts() == before


def test_upsert_of_a_departed_follower_is_400(world, crm):
    world.team_staff.status = "departed"
    world.team_staff.save()
    response = crm.post(URL, {"external_userid": "wmLate", "followers": [{"employee": "lisi"}]}, format="json")
    assert response.status_code == 400 and not Customer.objects.filter(external_userid="wmLate").exists()
