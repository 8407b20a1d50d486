"""Bugs a review found (FIXER): single-choice kept by taxonomy operations, audited personal-tag
deletes, bad dates and NUL bytes as 400s, archived remarks hidden, HR read-only on customers,
a JSON array body, exports, locks inherited by sub-groups, and the COPY audit path."""

from __future__ import annotations

import csv
import io

import pytest
from django.db import transaction
from django.test import Client
from django.urls import reverse

from customers.models import FollowRelation, Job, JobKind, Note, PersonalTagging, TagEvent, Tagging, TagSource
from customers.services import (
    TagOperation,
    customer_tags_replace,
    customer_tags_update,
    customers_tags_bulk_update,
    note_create,
)
from tagportal.errors import Conflict, NotAllowed
from tags.models import PersonalTag, TagGroup
from tags.services import personal_tag_delete, tag_group_update, tag_merge, tag_move
from tests.conftest import as_employee
from tests.customers.world import actor, world_fixture  # noqa: F401
from tests.factories import CustomerFactory, EmployeeFactory, make_tag_group

pytestmark = pytest.mark.django_db
URL = "/api/v1/customers/"


def stage_tags(w, customer) -> set[int]:
    return set(Tagging.objects.filter(customer=customer, tag__group=w.stage).values_list("tag_id", flat=True))


def snapshot():
    return (sorted(Tagging.objects.values_list("customer_id", "tag_id")), TagEvent.objects.count(),
            sorted(TagGroup.objects.values_list("pk", "single_choice")))


# ---------------------------------------------------------------- 1. rule 7 and taxonomy operations


def test_merge_into_a_single_choice_group_is_refused_when_a_customer_would_hold_two(world):
    w = world
    Tagging.objects.create(customer=w.c_staff, tag=w.vip)
    Tagging.objects.create(customer=w.c_staff, tag=w.hot)  # VIP + 高意向: merging VIP into 已成交 clashes
    before = snapshot()
    with pytest.raises(Conflict) as exc:
        tag_merge(actor=actor(w.admin), source=w.vip, target=w.won)
    assert "1 位客户" in exc.value.message and exc.value.details["customers"] == 1
    assert exc.value.status_code == 409
    assert snapshot() == before


def test_merge_into_a_single_choice_group_without_clash_goes_ahead(world):
    w = world
    Tagging.objects.create(customer=w.c_staff, tag=w.vip)
    Tagging.objects.create(customer=w.c_team, tag=w.won)
    Tagging.objects.create(customer=w.c_team, tag=w.vip)  # holds the target already: no clash
    tag_merge(actor=actor(w.admin), source=w.vip, target=w.won)
    assert stage_tags(w, w.c_staff) == {w.won.pk} and stage_tags(w, w.c_team) == {w.won.pk}


def test_moving_a_tag_into_a_single_choice_group_is_refused_on_clash(world):
    w = world
    Tagging.objects.create(customer=w.c_staff, tag=w.vip)
    Tagging.objects.create(customer=w.c_staff, tag=w.first_contact)
    Tagging.objects.create(customer=w.c_team, tag=w.vip)
    before = snapshot()
    with pytest.raises(Conflict) as exc:
        tag_move(actor=actor(w.admin), tag=w.vip, group=w.stage)
    assert "1 位客户" in exc.value.message
    assert snapshot() == before
    w.vip.refresh_from_db()
    assert w.vip.group_id == w.level.pk


def test_moving_a_tag_into_a_single_choice_group_without_clash_goes_ahead(world):
    w = world
    Tagging.objects.create(customer=w.c_team, tag=w.vip)
    tag_move(actor=actor(w.admin), tag=w.vip, group=w.stage)
    w.vip.refresh_from_db()
    assert w.vip.group_id == w.stage.pk


def test_turning_single_choice_on_is_refused_while_customers_hold_two_tags_of_the_group(world):
    w = world
    for c in (w.c_staff, w.c_team):
        Tagging.objects.create(customer=c, tag=w.vip)
        Tagging.objects.create(customer=c, tag=w.potential)
    Tagging.objects.create(customer=w.c_after, tag=w.vip)
    before = snapshot()
    with pytest.raises(Conflict) as exc:
        tag_group_update(actor=actor(w.admin), group=w.level, single_choice=True)
    assert "2 位客户" in exc.value.message
    assert snapshot() == before
    Tagging.objects.filter(customer__in=[w.c_staff, w.c_team], tag=w.potential).delete()
    assert tag_group_update(actor=actor(w.admin), group=w.level, single_choice=True).single_choice


def test_single_choice_conflict_over_the_api_is_409(world):
    w = world
    Tagging.objects.create(customer=w.c_staff, tag=w.vip)
    Tagging.objects.create(customer=w.c_staff, tag=w.potential)
    response = as_employee(w.admin).patch(f"/api/v1/tag-groups/{w.level.pk}/", {"single_choice": True},
                                          format="json")
    assert response.status_code == 409, response.content
    assert "1 位客户" in response.json()["error"]["message"]


def test_merge_and_move_conflicts_over_the_api_are_409_and_change_nothing(crm, world):
    w = world
    Tagging.objects.create(customer=w.c_staff, tag=w.vip)
    Tagging.objects.create(customer=w.c_staff, tag=w.hot)
    before = snapshot()
    response = crm.post(f"/api/v1/tags/{w.vip.pk}/merge/", {"target": w.won.pk}, format="json")
    assert response.status_code == 409, response.content
    assert response.json()["error"]["code"] == "single_choice_conflict"
    response = crm.patch(f"/api/v1/tags/{w.vip.pk}/", {"group": w.stage.pk}, format="json")
    assert response.status_code == 409, response.content
    assert snapshot() == before


# ---------------------------------------------------------------- 2. single-choice race (see test_review_race.py)
# ---------------------------------------------------------------- 3. personal tag delete is audited


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


# ---------------------------------------------------------------- 4. impossible dates


def test_upsert_with_an_impossible_date_is_400_naming_the_field(crm, world):
    response = crm.post(URL, {"external_userid": "wmDATE", "name": "x", "followers": [
        {"employee": "zhangsan", "added_at": "2024-13-45T00:00:00"}]}, format="json")
    assert response.status_code == 400, response.content
    assert "added_at" in response.json()["error"]["message"]
    assert not FollowRelation.objects.filter(customer__external_userid="wmDATE").exists()


# ---------------------------------------------------------------- 5. NUL bytes


@pytest.mark.parametrize("param", ["employee", "q", "follower", "state", "external_userid", "tags_any"])
def test_nul_in_a_query_parameter_is_400(crm, world, param):
    response = crm.get(URL, {param: "a\x00b"})
    assert response.status_code == 400, response.content
    assert response.json()["error"]["details"]


@pytest.mark.parametrize("body", [
    {"name": "a\x00b"},
    {"crm_fields": {"level": "a\x00"}},
    {"crm_fields": {"a\x00": 1}},
    {"followers": [{"employee": "zhangsan", "remark": "王\x00总"}]},
])
def test_nul_in_an_upsert_is_400_naming_the_field(crm, world, body):
    response = crm.post(URL, {"external_userid": "wmNUL", **body}, format="json")
    assert response.status_code == 400, response.content
    assert next(iter(body)) in response.json()["error"]["message"]


def test_nul_in_a_note_is_400(crm, world):
    response = crm.post(f"{URL}{world.c_staff.pk}/notes/?employee=zhangsan", {"text": "a\x00b"}, format="json")
    assert response.status_code == 400, response.content
    assert not Note.objects.exists()


def test_a_database_data_error_is_mapped_to_400_not_500(world):
    # Safety net (tagportal/api/exceptions.py) for any path without a check of its own: a value the
    # database itself refuses is the caller's bad input.
    from django.db import DataError, connection

    from tagportal.api.exceptions import exception_handler

    with pytest.raises(DataError) as exc, connection.cursor() as cursor, transaction.atomic():
        cursor.execute("SELECT %s::int", ["a\x00b" if connection.vendor == "postgresql" else "x"])
        raise DataError("simulated")  # SQLite accepts the cast: raise it ourselves
    response = exception_handler(exc.value, {})
    assert response.status_code == 400
    assert response.data["error"]["code"] == "invalid"


# ---------------------------------------------------------------- 6. archived remarks (rule 12)


def test_remark_of_a_relation_transferred_without_the_portrait_is_hidden_from_the_inheritor(world):
    w = world
    FollowRelation.objects.filter(customer=w.c_shared, employee=w.after_staff).update(
        remark="王五的备注", description="王五的描述", status="transferred", transferred_to=w.staff,
        portrait_kept=False)
    url = reverse("admin:customers_customer_change", args=[w.c_shared.pk])

    def followers_html(employee):
        client = Client()
        client.force_login(employee)
        return client.get(url).content.decode().split('id="followers"')[1].split("</section>")[0]

    html = followers_html(w.staff)
    assert "王五的备注" not in html and "王五的描述" not in html and "已归档" in html
    for insider in (w.hr, w.admin):
        html = followers_html(insider)
        assert "王五的备注" in html and "王五的描述" in html
    # With the portrait kept, the remark went along: nothing is archived.
    FollowRelation.objects.filter(customer=w.c_shared, employee=w.after_staff).update(portrait_kept=True)
    assert "王五的备注" in followers_html(w.staff)


# ---------------------------------------------------------------- 7. HR reads customers, changes nothing


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


# ---------------------------------------------------------------- 8. a JSON array body


def test_tags_endpoint_with_a_json_array_body_is_400(crm, world):
    response = crm.post(f"{URL}{world.c_staff.pk}/tags/", [world.vip.pk], format="json")
    assert response.status_code == 400, response.content
    assert not Tagging.objects.exists()


# ---------------------------------------------------------------- 9. exports show only one's own personal tags


def test_export_shows_only_the_viewers_own_personal_tags(world):
    w = world
    mine = PersonalTag.objects.create(owner=w.staff, name="我的私标")
    theirs = PersonalTag.objects.create(owner=w.after_staff, name="王五私标")
    PersonalTagging.objects.create(customer=w.c_shared, personal_tag=mine)
    PersonalTagging.objects.create(customer=w.c_shared, personal_tag=theirs)
    for viewer, expected in ((w.staff, "我的私标"), (w.admin, "")):
        client = Client()
        client.force_login(viewer)
        response = client.get(reverse("admin:customers_customer_export_csv"))
        assert response.status_code == 200
        body = b"".join(response.streaming_content).decode("utf-8-sig")
        row = next(r for r in csv.reader(io.StringIO(body)) if r[1] == w.c_shared.external_userid)
        assert row[-1] == expected and "王五私标" not in body


# ---------------------------------------------------------------- 10. a locked group locks its subtree


def group_block(html: str, name: str) -> str:
    """The portrait's row of one tag group (from its <div class="tp-taggroup ..."> to the next row)."""
    at = html.index(f'data-group="{name}"')
    start = html.rindex('<div class="tp-taggroup', 0, at)
    end = html.find('<div class="tp-taggroup', at)
    return html[start:end if end != -1 else html.index("tp-personal-row", at)]


@pytest.fixture
def locked_subtree(world):
    sub, (deep_tag,) = make_tag_group("重点子组", parent=world.key_group, tags=["子组标签"])
    return sub, deep_tag


def test_tag_of_a_sub_group_of_a_locked_group_is_refused_to_staff(world, locked_subtree):
    _sub, deep_tag = locked_subtree
    with pytest.raises(NotAllowed):
        customer_tags_update(actor=actor(world.staff), customer=world.c_staff, add=[deep_tag], source="manual")
    customer_tags_update(actor=actor(world.tag_admin), customer=world.c_staff, add=[deep_tag], source="manual")
    assert Tagging.objects.filter(customer=world.c_staff, tag=deep_tag).exists()


def test_portrait_greys_a_sub_group_of_a_locked_group_and_refuses_a_crafted_post(world, locked_subtree):
    w = world
    sub, deep_tag = locked_subtree
    client = Client()
    client.force_login(w.staff)
    url = reverse("admin:customers_customer_change", args=[w.c_staff.pk])
    block = group_block(client.get(url).content.decode(), sub.name)
    assert "tp-readonly" in block and "disabled" in block and "锁定" in block
    response = client.post(url, {"_action": "tags", f"tags-group_{sub.pk}": [str(deep_tag.pk)],
                                 f"tags-group_{w.stage.pk}": ""})
    assert response.status_code == 200  # the form again, with the error
    assert not Tagging.objects.filter(tag=deep_tag).exists()


# ---------------------------------------------------------------- 11. audit rows of the COPY path


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


# ---------------------------------------------------------------- 12. a group with only sub-groups


def test_portrait_shows_a_header_row_for_a_group_with_only_sub_groups(world):
    w = world
    industry, _ = make_tag_group("行业")
    making, _ = make_tag_group("制造业", parent=industry)
    make_tag_group("汽车", parent=making, tags=["整车厂", "零部件"])
    make_tag_group("空行业")  # no tags anywhere below: no row at all
    client = Client()
    client.force_login(w.staff)
    html = client.get(reverse("admin:customers_customer_change", args=[w.c_staff.pk])).content.decode()
    order = [html.index(f'data-group="{name}"') for name in ("行业", "制造业", "汽车")]
    assert order == sorted(order)
    assert "tp-group-header tp-depth-0" in html and "tp-group-header tp-depth-1" in html
    assert 'data-group="空行业"' not in html


@pytest.mark.parametrize("query", ["q=%00", "follower=a%00", "state=%00x", "external_userid=%00"])
def test_nul_in_the_admin_customer_list_filter_is_a_message_not_a_500(world, query):
    client = Client()
    client.force_login(world.staff)
    response = client.get(reverse("admin:customers_customer_changelist") + "?" + query)
    assert response.status_code == 200
    assert "NUL" in response.content.decode()  # the filter error, shown as a message


@pytest.mark.parametrize("path", ["/api/v1/tags/", "/api/v1/tag-groups/", "/api/v1/jobs/"])
def test_nul_in_employee_is_400_on_every_endpoint(crm, path):
    response = crm.get(path, {"employee": "\x00"})
    assert response.status_code == 400, response.content
