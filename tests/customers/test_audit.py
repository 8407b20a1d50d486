"""Rule 10: every tag change is one audit row: customer, tag, add/remove, source, actor, job, time."""

from __future__ import annotations

import pytest
from django.utils import timezone

from customers.models import Job, TagEvent, Tagging, TagSource
from customers.services import TagOperation, customer_tags_replace, customer_tags_update, customers_tags_bulk_update
from org.actors import Actor
from tagportal.errors import ValidationFailed
from tags.models import PersonalTag
from tests.customers.world import actor, world_fixture  # noqa: F401

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("source", TagSource.values)
def test_every_source_is_recorded_with_its_actor(world, source):
    who = {
        "manual": actor(world.staff), "bulk": actor(world.manager), "api": actor(world.staff, world.client),
        "channel": Actor(label="channel:spring2026"), "rule": Actor(label="rule:保养"),
        "transfer": actor(world.hr), "import": world.enterprise, "wecom": Actor(label="wecom"),
    }[source]
    started = timezone.now()
    customer_tags_update(actor=who, customer=world.c_staff, add=[world.vip], source=source)
    event = TagEvent.objects.get()
    assert (event.customer, event.tag, event.tag_name, event.action, event.source) == (
        world.c_staff, world.vip, "VIP客户", "add", source)
    assert event.actor_employee == who.employee and event.actor_client == who.api_client
    assert event.actor_label == (who.label or str(who))
    assert event.created_at >= started


def test_removal_and_single_choice_siblings_are_audited(world):
    customer_tags_update(actor=actor(world.staff), customer=world.c_staff, add=[world.first_contact], source="manual")
    customer_tags_update(actor=actor(world.staff), customer=world.c_staff, add=[world.hot], source="manual")
    customer_tags_update(actor=actor(world.staff), customer=world.c_staff, remove=[world.hot], source="manual")
    history = list(TagEvent.objects.order_by("id").values_list("tag_name", "action"))
    assert history == [("初次接触", "add"), ("初次接触", "remove"), ("高意向", "add"), ("高意向", "remove")]


def test_job_is_recorded_for_single_and_bulk_changes(world):
    job = Job.objects.create(kind="bulk_tagging", actor_employee=world.admin)
    customer_tags_update(actor=actor(world.admin), customer=world.c_team, add=[world.vip], source="bulk", job=job)
    customers_tags_bulk_update(
        actor=actor(world.admin), operations=[TagOperation(customer_id=world.c_after.pk, add=(world.vip.pk,))],
        source="bulk", job=job,
    )
    assert set(TagEvent.objects.values_list("customer_id", "job_id")) == {
        (world.c_team.pk, job.pk), (world.c_after.pk, job.pk)}


def test_personal_tag_changes_are_audited(world):
    mine = PersonalTag.objects.create(owner=world.staff, name="家长决策")
    customer_tags_replace(actor=actor(world.staff), customer=world.c_staff, tag_ids=None, personal_tag_ids=[mine.pk],
                          source="manual")
    customer_tags_replace(actor=actor(world.staff), customer=world.c_staff, tag_ids=None, personal_tag_ids=[],
                          source="manual")
    history = list(TagEvent.objects.order_by("id").values_list("personal_tag_id", "tag_id", "action"))
    assert history == [(mine.pk, None, "add"), (mine.pk, None, "remove")]


def test_no_change_no_event_and_failed_call_no_event(world):
    Tagging.objects.create(customer=world.c_staff, tag=world.vip)
    customer_tags_update(actor=actor(world.staff), customer=world.c_staff, add=[world.vip], source="manual")
    with pytest.raises(ValidationFailed):
        customer_tags_update(actor=actor(world.staff), customer=world.c_staff, add=[world.potential, 999_999],
                             source="manual")
    assert not TagEvent.objects.exists()


def test_unknown_source_is_a_programming_error(world):
    with pytest.raises(ValueError):
        customer_tags_update(actor=actor(world.staff), customer=world.c_staff, add=[world.vip], source="magic")
