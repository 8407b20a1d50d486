"""One order for tag groups everywhere (the taxonomy tree, the portrait, the list's tag filter, the
bulk form, the sidebar, the API), a new group last among its siblings wherever it is created, and
times in Asia/Shanghai on the employee page's hand-over history."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.urls import reverse

from customers.models import Transfer
from org.actors import Actor
from tags import services
from tags.models import TagGroup
from tests.conftest import bearer_client, login
from tests.factories import CustomerFactory, EmployeeFactory, make_api_client

pytestmark = pytest.mark.django_db
ORDER = ["Alpha", "Able", "Zed", "Beta", "Gamma"]


@pytest.fixture
def taxonomy(db):
    admin = EmployeeFactory(userid="boss", roles=["enterprise_admin"])
    actor = Actor(employee=admin)
    # Same `order`, created in the opposite order of their names: creation order (pk) and tree order differ.
    beta = services.tag_group_create(actor=actor, name="Beta", order=0)
    alpha = services.tag_group_create(actor=actor, name="Alpha", order=0)
    zed = services.tag_group_create(actor=actor, name="Zed", parent=alpha, order=0)
    able = services.tag_group_create(actor=actor, name="Able", parent=alpha, order=0)
    for group in (beta, alpha, zed, able):
        services.tag_create(actor=actor, group=group, name=f"{group.name} tag")
    customer = CustomerFactory(followers=[admin])
    return {"admin": admin, "actor": actor, "customer": customer}


def names_in_order(html: str, names=ORDER) -> list[str]:
    found = {name: m.start() for name in names if (m := re.search(rf"\b{name}\b", html))}
    return sorted(found, key=found.get)


def test_a_new_group_goes_last_from_the_admin_form_and_the_api(taxonomy):
    client = login(taxonomy["admin"])
    add = client.get(reverse("admin:tags_taggroup_add")).content.decode()
    assert 'name="order" value="0"' not in add and "留空则排在同级最后" in add
    response = client.post(reverse("admin:tags_taggroup_add"), {
        "name": "Gamma", "order": "", "parent": "", "tags-TOTAL_FORMS": "0", "tags-INITIAL_FORMS": "0"})
    assert response.status_code == 302, response.content.decode()[:2000]
    created = bearer_client(make_api_client()[1]).post("/api/v1/tag-groups/", {"name": "Delta", "parent":
                                                        TagGroup.objects.get(name="Alpha").pk}, format="json")
    assert created.status_code == 201, created.json()
    roots = list(TagGroup.objects.filter(parent=None).order_by("tree_id").values_list("name", flat=True))
    assert roots == ["Alpha", "Beta", "Gamma"]
    children = list(TagGroup.objects.get(name="Alpha").get_children().values_list("name", flat=True))
    assert children == ["Able", "Zed", "Delta"]


def test_every_page_lists_groups_in_the_tree_order(taxonomy):
    services.tag_group_create(actor=taxonomy["actor"], name="Gamma")
    services.tag_create(actor=taxonomy["actor"], group=TagGroup.objects.get(name="Gamma"), name="Gamma tag")
    client = login(taxonomy["admin"])
    customer = taxonomy["customer"]
    pages = {
        "tree": reverse("admin:tags_taggroup_changelist"),
        "portrait": reverse("admin:customers_customer_change", args=[customer.pk]),
        "filter": reverse("admin:customers_customer_changelist"),
        "sidebar": reverse("sidebar-portrait", args=[customer.external_userid]),
    }
    for where, url in pages.items():
        assert names_in_order(client.get(url).content.decode()) == ORDER, where
    bulk = client.post(reverse("admin:customers_customer_changelist"),
                       {"action": "bulk_tag_action", "_selected_action": [customer.pk]}).content.decode()
    assert names_in_order(bulk) == ORDER, "bulk form"
    api = bearer_client(make_api_client()[1]).get("/api/v1/tag-groups/").json()["results"]
    assert [g["name"] for g in api] == ORDER, "API"


def test_hand_over_history_on_the_employee_page_is_in_shanghai_time(db):
    hr = EmployeeFactory(userid="hr", roles=["hr"])
    leaver = EmployeeFactory(userid="leaver")
    heir = EmployeeFactory(userid="heir")
    transfer = Transfer.objects.create(from_employee=leaver, keep_portrait=True, mark_departed=False)
    transfer.to_employees.set([heir])
    Transfer.objects.filter(pk=transfer.pk).update(created_at=dt.datetime(2026, 3, 1, 23, 30, tzinfo=dt.UTC))
    page = login(hr).get(reverse("admin:org_employee_change", args=[leaver.pk])).content.decode()
    assert "2026-03-02 07:30" in page and "2026-03-01 23:30" not in page
