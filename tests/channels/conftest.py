"""The channels tests' world: the customers tests' small company (departments, one employee per role,
a taxonomy with an open, a single-choice, a locked and a department-scoped group) plus helpers to make
codes and to add customers through them the way a CRM or WeCom does (`customer_upsert`)."""

from __future__ import annotations

import pytest

from channels.services import channel_code_create
from customers.services import customer_upsert
from org.actors import Actor
from tests.conftest import bearer_client
from tests.customers.world import world_fixture  # noqa: F401

ENTERPRISE = Actor(label="tests")


def make_code(**data):
    """A code made at enterprise level (employees as userids or Employee objects, tags as objects or ids)."""
    data.setdefault("name", "展会")
    data["tags"] = [getattr(t, "pk", t) for t in data.get("tags", [])]
    return channel_code_create(actor=ENTERPRISE, data=data)


def add_through(state: str, employee, external_userid: str, *, name: str = "", added_at: str | None = None,
                actor: Actor = ENTERPRISE):
    """A customer adds `employee` through the code with `state` (as `POST customers/` or WeCom's event does)."""
    follower = {"employee": employee.userid, "state": state}
    if added_at:
        follower["added_at"] = added_at
    customer, _created = customer_upsert(actor=actor, data={
        "external_userid": external_userid, "name": name or external_userid, "followers": [follower]})
    return customer


@pytest.fixture
def crm(world):
    return bearer_client(world.key)
