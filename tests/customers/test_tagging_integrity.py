"""A tagging never points at a customer or tag that does not exist (issue 13.7).

The two foreign keys of `customers_tagging` became statement triggers (migration 0012: one
set-based check per INSERT/UPDATE instead of two lookups per row); these tests hold them to what the
foreign keys guaranteed: orphan inserts and updates fail, a customer or tag that taggings point at
cannot be deleted underneath them (on PostgreSQL also by raw SQL and by a concurrent transaction),
and Django's `on_delete=CASCADE` still deletes a customer's or tag's taggings with it.
"""

from __future__ import annotations

import threading
import time

import pytest
from django.db import IntegrityError, connection, transaction

from customers.models import Customer, Tagging
from customers.services import TagOperation, customers_tags_bulk_update
from org.actors import Actor
from tags.models import Tag
from tests.factories import CustomerFactory, make_tag_group

pytestmark = pytest.mark.django_db
postgres_only = pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL statement triggers")

TABLE = Tagging._meta.db_table


def _sql(sql: str, params=()) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


@pytest.fixture
def tagged():
    _group, (vip, hot) = make_tag_group("客户等级", tags=["VIP客户", "高意向"])
    customer, other = CustomerFactory(), CustomerFactory()
    Tagging.objects.create(customer=customer, tag=vip)
    return customer, other, vip, hot


def test_a_tagging_of_a_missing_customer_or_tag_is_refused(tagged):
    customer, _other, vip, _hot = tagged
    for values in ([10**9, vip.pk], [customer.pk, 10**9]):
        with pytest.raises(IntegrityError), transaction.atomic():
            _sql(f"INSERT INTO {TABLE} (customer_id, tag_id, created_at) VALUES (%s, %s, CURRENT_TIMESTAMP)", values)
    assert list(Tagging.objects.values_list("customer_id", "tag_id")) == [(customer.pk, vip.pk)]


def test_one_missing_reference_fails_the_whole_set_based_insert(tagged):
    customer, other, vip, hot = tagged
    with pytest.raises(IntegrityError), transaction.atomic():
        Tagging.objects.bulk_create([Tagging(customer=other, tag=vip), Tagging(customer=other, tag=hot),
                                     Tagging(customer_id=10**9, tag=hot)])
    assert Tagging.objects.count() == 1


def test_moving_a_tagging_onto_a_missing_customer_or_tag_is_refused(tagged):
    customer, _other, vip, _hot = tagged
    for change in ({"tag_id": 10**9}, {"customer_id": 10**9}):
        with pytest.raises(IntegrityError), transaction.atomic():
            Tagging.objects.filter(customer=customer).update(**change)
    assert list(Tagging.objects.values_list("customer_id", "tag_id")) == [(customer.pk, vip.pk)]


def test_deleting_a_customer_or_tag_deletes_their_taggings(tagged):
    customer, other, vip, hot = tagged
    Tagging.objects.create(customer=other, tag=hot)
    customer.delete()
    hot.delete()
    assert not Tagging.objects.exists()
    assert Tag.objects.filter(pk=vip.pk).exists() and Customer.objects.filter(pk=other.pk).exists()


@postgres_only
@pytest.mark.parametrize("table", ["customer", "tag"])
def test_a_customer_or_tag_with_taggings_cannot_be_deleted_or_renumbered_underneath_them(tagged, table):
    customer, _other, vip, _hot = tagged
    row, name = (customer, Customer._meta.db_table) if table == "customer" else (vip, Tag._meta.db_table)
    with pytest.raises(IntegrityError), transaction.atomic():
        _sql(f"DELETE FROM {name} WHERE id = %s", [row.pk])
    with pytest.raises(IntegrityError), transaction.atomic():
        _sql(f"UPDATE {name} SET id = %s WHERE id = %s", [10**9, row.pk])
    assert list(Tagging.objects.values_list("customer_id", "tag_id")) == [(customer.pk, vip.pk)]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="concurrent transactions need PostgreSQL")
@pytest.mark.parametrize("first", ["tagging", "delete"])
def test_a_concurrent_delete_never_leaves_an_orphan(transactional_db, first):
    """One transaction tags a customer through the bulk service while another deletes it the way
    Django's collector does (its taggings, then the row). Whoever comes second fails: the
    tagging waits for the delete and finds the customer gone, or the delete waits for the tagging
    (its share lock) and then finds the new tagging. Never a tagging without its customer."""
    _group, (vip,) = make_tag_group("客户等级", tags=["VIP客户"])
    customer = CustomerFactory()
    started, release, outcome = threading.Event(), threading.Event(), {}

    def tag():
        customers_tags_bulk_update(actor=Actor(label="rule:并发"), source="rule",
                                   operations=[TagOperation(customer.pk, add=(vip.pk,))])

    def delete():
        _sql(f"DELETE FROM {TABLE} WHERE customer_id = %s", [customer.pk])
        _sql(f"DELETE FROM {Customer._meta.db_table} WHERE id = %s", [customer.pk])

    steps = {"tagging": tag, "delete": delete}
    second = "delete" if first == "tagging" else "tagging"

    def run(which, hold):
        try:
            with transaction.atomic():
                if not hold:
                    started.wait(10)
                steps[which]()
                if hold:
                    started.set()
                    release.wait(10)  # keep the transaction open while the other one starts
            outcome[which] = "committed"
        except Exception as exc:  # noqa: BLE001 - the outcome is the assertion
            outcome[which] = type(exc).__name__
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(first, True)), threading.Thread(target=run, args=(second, False))]
    for thread in threads:
        thread.start()
    assert started.wait(10)
    time.sleep(0.5)  # the second transaction is now waiting for the first one's lock
    release.set()
    for thread in threads:
        thread.join(20)
    assert outcome == {first: "committed", second: "IntegrityError"}
    orphans = Tagging.objects.exclude(customer_id__in=Customer.objects.values("pk")).count()
    assert orphans == 0
    assert Customer.objects.filter(pk=customer.pk).exists() == (first == "tagging")


def test_the_reference_triggers_are_in_place():
    """A later migration that rebuilds `customers_tagging` (SQLite rebuilds tables on ALTER) must
    re-create the triggers of migration 0012; this says so if it did not."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT tgname FROM pg_trigger WHERE tgname LIKE 'tagging_refs_%%' AND NOT tgisinternal")
            expected = {"tagging_refs_insert", "tagging_refs_update", "tagging_refs_customer_delete",
                        "tagging_refs_tag_delete", "tagging_refs_customer_id", "tagging_refs_tag_id"}
        else:
            cursor.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'tagging_refs_%'")
            expected = {"tagging_refs_insert", "tagging_refs_update"}
        assert {row[0] for row in cursor.fetchall()} == expected
