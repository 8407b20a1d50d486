"""Rule 7 (单选) kept by taxonomy operations: merging or moving a tag into a single-choice group, or
turning single-choice on, is refused while a customer would hold two of its tags (409 over the API),
and goes ahead when nobody would. Concurrent writers: test_concurrent_tagging.py."""

from __future__ import annotations

import pytest

from customers.models import TagEvent, Tagging
from tagportal.errors import Conflict
from tags.models import TagGroup
from tags.services import tag_group_update, tag_merge, tag_move
from tests.conftest import as_employee
from tests.customers.world import actor, world_fixture  # noqa: F401

pytestmark = pytest.mark.django_db


def stage_tags(w, customer) -> set[int]:
    return set(Tagging.objects.filter(customer=customer, tag__group=w.stage).values_list("tag_id", flat=True))


def snapshot():
    return (sorted(Tagging.objects.values_list("customer_id", "tag_id")), TagEvent.objects.count(),
            sorted(TagGroup.objects.values_list("pk", "single_choice")))


# ---------------------------------------------------------------- rule 7 and taxonomy operations


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
