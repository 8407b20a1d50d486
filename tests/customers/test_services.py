"""The one tagging service: scope, locked and single-choice groups, personal tags, no duplicates,
hidden tags kept, customers out of reach, and nothing written on error."""

from __future__ import annotations

import pytest

from customers.models import PersonalTagging, TagEvent, Tagging, TagSource
from customers.services import customer_tags_replace, customer_tags_update
from tagportal.errors import NotAllowed, NotFound, ValidationFailed
from tags.models import PersonalTag
from tests.customers.world import actor, world_fixture  # noqa: F401
from tests.factories import CustomerFactory, make_api_client

pytestmark = pytest.mark.django_db


def tag_ids(customer) -> set[int]:
    return set(Tagging.objects.filter(customer=customer).values_list("tag_id", flat=True))


def counts() -> tuple[int, int, int]:
    return Tagging.objects.count(), PersonalTagging.objects.count(), TagEvent.objects.count()


def test_staff_tags_own_customer_and_it_is_audited(world):
    change = customer_tags_update(
        actor=actor(world.staff), customer=world.c_staff, add=[world.vip.pk], source=TagSource.MANUAL
    )
    assert [t.pk for t in change.added] == [world.vip.pk]
    assert tag_ids(world.c_staff) == {world.vip.pk}
    event = TagEvent.objects.get()
    assert (event.customer_id, event.tag_id, event.action, event.source) == (
        world.c_staff.pk, world.vip.pk, "add", "manual")
    assert event.actor_employee == world.staff and event.tag_name == "VIP客户"


def test_adding_twice_never_duplicates(world):
    for _ in range(2):
        customer_tags_update(actor=actor(world.staff), customer=world.c_staff, add=[world.vip], source="manual")
    assert Tagging.objects.filter(customer=world.c_staff).count() == 1
    assert TagEvent.objects.count() == 1


def test_removing_an_absent_tag_changes_nothing(world):
    change = customer_tags_update(actor=actor(world.staff), customer=world.c_staff, remove=[world.vip], source="manual")
    assert not change.changed and TagEvent.objects.count() == 0


@pytest.mark.parametrize("bad", ["unknown", "scoped_elsewhere"])
def test_unknown_or_invisible_tag_is_400_with_ids_and_nothing_written(world, bad):
    bad_id = 999_999 if bad == "unknown" else world.maintenance.pk
    before = counts()
    with pytest.raises(ValidationFailed) as exc:
        customer_tags_update(
            actor=actor(world.staff), customer=world.c_staff, add=[world.vip.pk, bad_id], source="manual"
        )
    assert exc.value.details["tags"] == [bad_id]
    assert counts() == before


def test_scoped_tag_is_usable_by_its_department(world):
    customer_tags_update(
        actor=actor(world.after_staff), customer=world.c_after, add=[world.maintenance], source="manual"
    )
    assert tag_ids(world.c_after) == {world.maintenance.pk}


def test_customer_out_of_reach_is_404(world):
    before = counts()
    with pytest.raises(NotFound):
        customer_tags_update(actor=actor(world.staff), customer=world.c_team, add=[world.vip], source="manual")
    assert counts() == before


@pytest.mark.parametrize("who", ["staff", "manager"])
def test_staff_and_managers_cannot_apply_or_remove_locked_tags(world, who):
    employee = getattr(world, who)
    customer = world.c_staff
    Tagging.objects.create(customer=customer, tag=world.potential)
    before = counts()
    with pytest.raises(NotAllowed) as exc:
        customer_tags_update(actor=actor(employee), customer=customer, add=[world.key_account], source="manual")
    assert exc.value.details["tags"] == [world.key_account.pk]
    Tagging.objects.create(customer=customer, tag=world.key_account)
    with pytest.raises(NotAllowed):
        customer_tags_update(actor=actor(employee), customer=customer, remove=[world.key_account], source="manual")
    assert tag_ids(customer) == {world.potential.pk, world.key_account.pk}
    assert counts()[2] == before[2]


def test_locked_tags_for_an_api_client_acting_as_staff_are_refused(world):
    with pytest.raises(NotAllowed):
        customer_tags_update(
            actor=actor(world.staff, world.client), customer=world.c_staff, add=[world.key_account], source="api"
        )


@pytest.mark.parametrize("who", ["tag_admin", "admin", "enterprise", "automation"])
def test_admins_api_clients_and_automation_may_apply_locked_tags(world, who):
    who_actor = getattr(world, who) if who in ("enterprise", "automation") else actor(getattr(world, who))
    customer_tags_update(actor=who_actor, customer=world.c_staff, add=[world.key_account], source="api")
    assert tag_ids(world.c_staff) == {world.key_account.pk}
    customer_tags_update(actor=who_actor, customer=world.c_staff, remove=[world.key_account], source="api")
    assert tag_ids(world.c_staff) == set()


def test_single_choice_replaces_sibling_and_audits_the_removal(world):
    Tagging.objects.create(customer=world.c_staff, tag=world.first_contact)
    change = customer_tags_update(actor=actor(world.staff), customer=world.c_staff, add=[world.hot], source="manual")
    assert tag_ids(world.c_staff) == {world.hot.pk}
    assert [t.pk for t in change.removed] == [world.first_contact.pk]
    assert set(TagEvent.objects.values_list("tag_id", "action")) == {
        (world.first_contact.pk, "remove"), (world.hot.pk, "add")}


def test_two_tags_of_a_single_choice_group_in_one_call_is_400(world):
    before = counts()
    with pytest.raises(ValidationFailed) as exc:
        customer_tags_update(
            actor=actor(world.staff), customer=world.c_staff, add=[world.hot, world.won], source="manual"
        )
    assert sorted(exc.value.details["tags"]) == sorted([world.hot.pk, world.won.pk])
    assert counts() == before


def test_same_tag_added_and_removed_is_400(world):
    with pytest.raises(ValidationFailed):
        customer_tags_update(
            actor=actor(world.staff), customer=world.c_staff, add=[world.vip], remove=[world.vip], source="manual"
        )


def test_personal_tags_only_own_and_only_on_followed_customers(world):
    mine = PersonalTag.objects.create(owner=world.manager, name="爱喝茶")
    theirs = PersonalTag.objects.create(owner=world.staff, name="家长决策")
    customer_tags_update(actor=actor(world.manager), customer=world.c_manager, personal_add=[mine], source="manual")
    assert PersonalTagging.objects.filter(customer=world.c_manager, personal_tag=mine).exists()
    assert TagEvent.objects.get().personal_tag == mine

    before = counts()
    with pytest.raises(ValidationFailed) as exc:
        customer_tags_update(
            actor=actor(world.manager), customer=world.c_manager, personal_add=[theirs], source="manual"
        )
    assert exc.value.details["personal_tags"] == [theirs.pk]
    # The manager sees the staff member's customer but does not follow it.
    with pytest.raises(ValidationFailed) as exc:
        customer_tags_update(actor=actor(world.manager), customer=world.c_staff, personal_add=[mine], source="manual")
    assert exc.value.code == "not_follower"
    with pytest.raises(ValidationFailed):
        customer_tags_update(actor=world.enterprise, customer=world.c_staff, personal_add=[mine], source="api")
    assert counts() == before


def test_personal_tag_removal(world):
    mine = PersonalTag.objects.create(owner=world.staff, name="家长决策")
    customer_tags_update(actor=actor(world.staff), customer=world.c_staff, personal_add=[mine], source="manual")
    change = customer_tags_update(
        actor=actor(world.staff), customer=world.c_staff, personal_remove=[mine], source="manual"
    )
    assert change.personal_removed == [mine]
    assert not PersonalTagging.objects.exists()


def test_read_only_key_and_departed_employee_cannot_write(world):
    ro_client, _key = make_api_client("bi", read_only=True)
    with pytest.raises(NotAllowed):
        customer_tags_update(actor=actor(None, ro_client), customer=world.c_staff, add=[world.vip], source="api")
    world.staff.status = "departed"
    world.staff.save()
    with pytest.raises(NotAllowed):
        customer_tags_update(actor=actor(world.staff), customer=world.c_staff, add=[world.vip], source="manual")
    assert not Tagging.objects.exists()


def test_update_bumps_updated_at(world):
    before = world.c_staff.updated_at
    customer_tags_update(actor=actor(world.staff), customer=world.c_staff, add=[world.vip], source="manual")
    world.c_staff.refresh_from_db()
    assert world.c_staff.updated_at > before


# ---------------------------------------------------------------- rule 8: hidden tags are never lost


def test_manager_replacing_tags_keeps_a_tag_scoped_elsewhere(world):
    customer = world.c_shared  # followed by zhangsan (sales) and wangwu (after-sales)
    Tagging.objects.create(customer=customer, tag=world.maintenance)  # hidden from the sales manager
    Tagging.objects.create(customer=customer, tag=world.potential)
    customer_tags_replace(
        actor=actor(world.manager), customer=customer, tag_ids=[world.vip.pk], personal_tag_ids=None,
        source="manual",
    )
    assert tag_ids(customer) == {world.vip.pk, world.maintenance.pk}
    assert not TagEvent.objects.filter(tag=world.maintenance).exists()
    # An empty set clears only what the manager sees.
    customer_tags_replace(actor=actor(world.manager), customer=customer, tag_ids=[], personal_tag_ids=None,
                          source="manual")
    assert tag_ids(customer) == {world.maintenance.pk}


def test_replace_keeps_locked_tags_staff_cannot_change(world):
    Tagging.objects.create(customer=world.c_staff, tag=world.key_account)
    customer_tags_replace(actor=actor(world.staff), customer=world.c_staff, tag_ids=[world.vip.pk],
                          personal_tag_ids=None, source="manual")
    assert tag_ids(world.c_staff) == {world.vip.pk, world.key_account.pk}
    with pytest.raises(NotAllowed):
        customer_tags_replace(actor=actor(world.staff), customer=world.c_shared,
                              tag_ids=[world.key_account.pk], personal_tag_ids=None, source="manual")


def test_replace_keeps_other_employees_personal_tags(world):
    mine = PersonalTag.objects.create(owner=world.staff, name="家长决策")
    theirs = PersonalTag.objects.create(owner=world.after_staff, name="关注售后")
    PersonalTagging.objects.create(customer=world.c_shared, personal_tag=theirs)
    customer_tags_replace(actor=actor(world.staff), customer=world.c_shared, tag_ids=None,
                          personal_tag_ids=[mine.pk], source="manual")
    customer_tags_replace(actor=actor(world.staff), customer=world.c_shared, tag_ids=None,
                          personal_tag_ids=[], source="manual")
    assert list(PersonalTagging.objects.values_list("personal_tag_id", flat=True)) == [theirs.pk]


def test_replace_with_two_single_choice_tags_is_400(world):
    with pytest.raises(ValidationFailed):
        customer_tags_replace(actor=actor(world.staff), customer=world.c_staff,
                              tag_ids=[world.hot.pk, world.won.pk], personal_tag_ids=None, source="manual")
    assert not Tagging.objects.exists()


def test_tags_of_unrelated_customers_are_untouched(world):
    other = CustomerFactory(followers=[world.staff])
    Tagging.objects.create(customer=other, tag=world.first_contact)
    customer_tags_update(actor=actor(world.staff), customer=world.c_staff, add=[world.hot], source="manual")
    assert tag_ids(other) == {world.first_contact.pk}
