"""The set-based tagging service: validates every operation first (bad items listed, nothing written),
then applies the same rules as single edits with a fixed number of queries, whatever the size."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from customers.models import Job, TagEvent, Tagging
from customers.services import TagOperation, customers_tags_bulk_update
from tagportal.errors import NotAllowed, ValidationFailed
from tests.customers.world import actor, world_fixture  # noqa: F401
from tests.factories import CustomerFactory, make_api_client

pytestmark = pytest.mark.django_db


def snapshot():
    return set(Tagging.objects.values_list("customer_id", "tag_id")), TagEvent.objects.count()


def test_bulk_adds_removes_and_counts(world):
    Tagging.objects.create(customer=world.c_staff, tag=world.potential)
    ops = [
        TagOperation(customer_id=world.c_staff.pk, add=(world.vip.pk,), remove=(world.potential.pk,)),
        TagOperation(customer_id=world.c_shared.pk, add=(world.vip.pk,), remove=(world.potential.pk,)),
    ]
    result = customers_tags_bulk_update(actor=actor(world.staff), operations=ops, source="bulk")
    assert (result.added, result.removed, result.unchanged) == (2, 1, 1)
    assert set(Tagging.objects.values_list("customer_id", "tag_id")) == {
        (world.c_staff.pk, world.vip.pk), (world.c_shared.pk, world.vip.pk)}
    assert TagEvent.objects.filter(source="bulk", actor_employee=world.staff).count() == 3
    again = customers_tags_bulk_update(actor=actor(world.staff), operations=ops, source="bulk")
    assert (again.added, again.removed, again.unchanged) == (0, 0, 4)


def test_bad_items_are_listed_and_nothing_is_written(world):
    before = snapshot()
    ops = [
        TagOperation(customer_id=world.c_staff.pk, add=(world.vip.pk,)),  # fine
        TagOperation(customer_id=world.c_team.pk, add=(world.vip.pk,)),  # not the staff's customer
        TagOperation(customer_id=world.c_shared.pk, add=(world.maintenance.pk,)),  # scoped elsewhere
        TagOperation(customer_id=world.c_staff.pk, add=(world.key_account.pk,)),  # locked
        TagOperation(customer_id=world.c_shared.pk, add=(world.hot.pk, world.won.pk)),  # single-choice twice
        TagOperation(customer_id=987654, add=(world.vip.pk,)),  # unknown customer
    ]
    with pytest.raises(ValidationFailed) as exc:
        customers_tags_bulk_update(actor=actor(world.staff), operations=ops, source="bulk")
    details = exc.value.details
    by_index = {d["index"]: {e["code"] for e in d["errors"]} for d in details}
    assert by_index[1] == {"not_found"} and by_index[5] == {"not_found"}
    assert "unknown_tags" in by_index[2]
    assert {"locked", "single_choice"} <= by_index[3] | by_index[4]
    assert 0 not in by_index
    assert snapshot() == before


def test_bulk_single_choice_removes_siblings_and_audits(world):
    customers = [CustomerFactory() for _ in range(3)]
    for c in customers:
        Tagging.objects.create(customer=c, tag=world.first_contact)
    ops = [TagOperation(customer_id=c.pk, add=(world.won.pk,)) for c in customers]
    result = customers_tags_bulk_update(actor=actor(world.admin), operations=ops, source="bulk")
    assert (result.added, result.removed) == (3, 3)
    assert set(Tagging.objects.values_list("tag_id", flat=True)) == {world.won.pk}
    assert TagEvent.objects.filter(tag=world.first_contact, action="remove").count() == 3


def test_bulk_keeps_hidden_tags_and_records_the_job(world):
    Tagging.objects.create(customer=world.c_shared, tag=world.maintenance)
    job = Job.objects.create(kind="bulk_tagging")
    customers_tags_bulk_update(
        actor=actor(world.manager), operations=[TagOperation(customer_id=world.c_shared.pk, add=(world.vip.pk,))],
        source="bulk", job=job,
    )
    assert set(Tagging.objects.filter(customer=world.c_shared).values_list("tag_id", flat=True)) == {
        world.maintenance.pk, world.vip.pk}
    assert TagEvent.objects.get().job == job


def test_enterprise_client_may_bulk_apply_locked_tags_but_read_only_may_not(world):
    ops = [TagOperation(customer_id=world.c_team.pk, add=(world.key_account.pk,))]
    assert customers_tags_bulk_update(actor=world.enterprise, operations=ops, source="api").added == 1
    ro, _key = make_api_client("bi", read_only=True)
    with pytest.raises(NotAllowed):
        customers_tags_bulk_update(actor=actor(None, ro), operations=ops, source="api")


def _queries(ops, world) -> int:
    with CaptureQueriesContext(connection) as ctx:
        customers_tags_bulk_update(actor=actor(world.admin), operations=ops, source="bulk")
    return len(ctx.captured_queries)


def test_no_query_per_row(world):
    small = [CustomerFactory() for _ in range(5)]
    large = [CustomerFactory() for _ in range(60)]
    tags = (world.vip.pk, world.hot.pk)
    _queries([TagOperation(customer_id=world.c_staff.pk)], world)  # warm the actor's role cache
    q_small = _queries([TagOperation(customer_id=c.pk, add=tags, remove=(world.potential.pk,)) for c in small], world)
    q_large = _queries([TagOperation(customer_id=c.pk, add=tags, remove=(world.potential.pk,)) for c in large], world)
    # 12× the rows, the same statements (SQLite may split a bulk insert into a couple more batches).
    assert q_large <= q_small + (0 if connection.vendor == "postgresql" else 3)
    assert Tagging.objects.filter(tag=world.hot).count() == 65


def test_operations_on_the_same_customer_are_merged(world):
    ops = [TagOperation(customer_id=world.c_staff.pk, add=(world.vip.pk,)),
           TagOperation(customer_id=world.c_staff.pk, add=(world.potential.pk,))]
    result = customers_tags_bulk_update(actor=actor(world.staff), operations=ops, source="bulk")
    assert result.added == 2
