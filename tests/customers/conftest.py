"""Fixtures several customers test modules share. They build on the module's `world`
(`from tests.customers.world import world_fixture  # noqa: F401`)."""

from __future__ import annotations

import pytest

from customers.models import Tagging
from tests.conftest import bearer_client
from tests.factories import CustomerFactory


@pytest.fixture
def crm(world):
    """The CRM on the API, with the world's write key."""
    return bearer_client(world.key)


@pytest.fixture
def tagged(world):
    """张三 follows three customers: VIP+高意向, VIP+已成交, 潜在客户."""
    w = world
    w.c_hot = CustomerFactory(name="热客户", followers=[w.staff])
    w.c_won = CustomerFactory(name="已成交客户", followers=[w.staff])
    w.c_cold = CustomerFactory(name="冷客户", followers=[w.staff])
    for customer, tags in ((w.c_hot, (w.vip, w.hot)), (w.c_won, (w.vip, w.won)), (w.c_cold, (w.potential,))):
        for t in tags:
            Tagging.objects.create(customer=customer, tag=t)
    return w
