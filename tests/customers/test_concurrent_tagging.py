"""Rule 7 under concurrency: two writers applying different tags of one single-choice group
to the same customer at once must leave exactly one. The writers lock the customer rows (id order)
before touching taggings, so the second waits for the first and then removes its tag."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection, transaction

from customers.models import TagEvent, Tagging
from customers.services import TagOperation, customer_tags_update, customers_tags_bulk_update
from org.actors import Actor
from tests.factories import CustomerFactory, make_tag_group

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks need PostgreSQL")

RULE = Actor(label="rule:并发")


def _write(path: str, customer_id: int, tag_id: int) -> None:
    if path == "bulk":
        customers_tags_bulk_update(actor=RULE, operations=[TagOperation(customer_id, add=(tag_id,))], source="rule")
    else:
        customer_tags_update(actor=RULE, customer=customer_id, add=[tag_id], source="rule")


@pytest.mark.parametrize("first,second", [("bulk", "bulk"), ("single", "bulk"), ("bulk", "single")])
def test_two_concurrent_writers_leave_one_tag_of_a_single_choice_group(transactional_db, first, second):
    _group, (hot, won) = make_tag_group("转化阶段", single_choice=True, tags=["高意向", "已成交"])
    customer = CustomerFactory()
    first_written, release, errors = threading.Event(), threading.Event(), []

    def writer_a():
        try:
            with transaction.atomic():
                _write(first, customer.pk, hot.pk)
                first_written.set()
                release.wait(10)  # hold the transaction open while the second writer starts
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    def writer_b():
        try:
            first_written.wait(10)
            _write(second, customer.pk, won.pk)
        except Exception as exc:  # pragma: no cover
            errors.append(exc)
        finally:
            connection.close()

    a, b = threading.Thread(target=writer_a), threading.Thread(target=writer_b)
    a.start()
    b.start()
    assert first_written.wait(10)
    time.sleep(0.5)  # the second writer is now waiting (for the row lock)
    release.set()
    a.join(15)
    b.join(15)
    assert not errors, errors
    assert list(Tagging.objects.filter(customer=customer).values_list("tag_id", flat=True)) == [won.pk]
    # Both writes and the sibling removal are audited.
    assert sorted(TagEvent.objects.values_list("tag_name", "action")) == [
        ("已成交", "add"), ("高意向", "add"), ("高意向", "remove")]
