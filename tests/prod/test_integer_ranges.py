"""Every integer from outside is range-checked before the database: out of range is a 400 naming
the field (or a 404 for a path id), on SQLite and PostgreSQL alike, never a 500."""

from __future__ import annotations

import pytest

from customers.models import Tagging
from tests.customers.world import world_fixture  # noqa: F401

pytestmark = pytest.mark.django_db
HUGE = 99999999999999999999999


@pytest.fixture
def crm(world):
    from tests.conftest import bearer_client

    return bearer_client(world.key)


@pytest.mark.parametrize("path, field", [
    ("/api/v1/customers/?department={n}", "department"),
    ("/api/v1/customers/?tags_any={n}", "tags_any"),
    ("/api/v1/customers/?tags_all={n}", "tags_all"),
    ("/api/v1/customers/?tags_none={n}", "tags_none"),
    ("/api/v1/tags/?group={n}", "group"),
    ("/api/v1/tag-groups/?parent={n}", "parent"),
    ("/api/v1/departments/?parent={n}", "parent"),
    ("/api/v1/employees/?department={n}", "department"),
])
@pytest.mark.parametrize("n", [HUGE, 2**63, -1, 0])
def test_an_out_of_range_id_in_a_query_string_is_400_naming_it(crm, world, path, field, n):
    response = crm.get(path.format(n=n))
    assert response.status_code == 400, response.content
    body = response.json()["error"]
    assert field in body["details"], body


def test_the_largest_id_is_fine_and_finds_nothing(crm, world):
    response = crm.get(f"/api/v1/customers/?department={2**63 - 1}")
    assert response.status_code == 200, response.content
    assert response.json()["results"] == []


@pytest.mark.parametrize("key", ["add", "remove"])
def test_an_out_of_range_tag_id_in_a_tags_body_is_400_naming_it(crm, world, key):
    response = crm.post(f"/api/v1/customers/{world.c_staff.pk}/tags/", {key: [world.vip.pk, HUGE]}, format="json")
    assert response.status_code == 400, response.content
    assert key in str(response.json()["error"]["details"])
    assert not Tagging.objects.exists()


def test_an_out_of_range_item_in_a_bulk_call_is_400_naming_the_item(crm, world):
    response = crm.post("/api/v1/tagging/bulk/", {"operations": [
        {"customer": world.c_staff.pk, "add": [world.vip.pk]},
        {"customer": HUGE, "add": [world.vip.pk]},
        {"customer": world.c_staff.pk, "add": [HUGE]},
    ]}, format="json")
    assert response.status_code == 400, response.content
    details = response.json()["error"]["details"]
    assert [d["index"] for d in details] == [1, 2]
    assert not Tagging.objects.exists()


def test_an_out_of_range_id_in_a_bulk_filter_is_400_naming_it(crm, world):
    response = crm.post("/api/v1/tagging/bulk/", {"filter": {"department": HUGE}, "add": [world.vip.pk]},
                        format="json")
    assert response.status_code == 400, response.content
    assert "department" in str(response.json()["error"]["details"])


@pytest.mark.parametrize("path", [
    "/api/v1/customers/{n}/", "/api/v1/customers/{n}/tags/", "/api/v1/tags/{n}/", "/api/v1/jobs/{n}/",
    "/api/v1/departments/{n}/", "/api/v1/transfers/{n}/",
])
def test_an_out_of_range_path_id_is_404(crm, world, path):
    method = crm.post if path.endswith("tags/") else crm.get
    response = method(path.format(n=HUGE), {"add": [world.vip.pk]}, format="json")
    assert response.status_code == 404, response.content
    assert response.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize("path, body, field", [
    ("/api/v1/tag-groups/", {"name": "新组", "departments": [HUGE]}, "departments"),
    ("/api/v1/tag-groups/", {"name": "新组", "parent": HUGE}, "parent"),
    ("/api/v1/tag-groups/", {"name": "新组", "order": HUGE}, "order"),
    ("/api/v1/tags/", {"name": "新标签", "group": HUGE}, "group"),
    ("/api/v1/tags/", {"name": "新标签", "group": "{group}", "order": -HUGE}, "order"),
    ("/api/v1/tags/{tag}/merge/", {"target": HUGE}, "target"),
    ("/api/v1/departments/", {"name": "新部门", "parent": HUGE}, "parent"),
    ("/api/v1/departments/", {"name": "新部门", "order": HUGE}, "order"),
    ("/api/v1/employees/", {"userid": "newbie", "name": "新人", "departments": [HUGE]}, "departments"),
    ("/api/v1/customers/", {"external_userid": "wmX", "type": HUGE, "followers": [{"employee": "zhangsan"}]},
     "type"),
    ("/api/v1/customers/", {"external_userid": "wmX", "followers": [{"employee": "zhangsan", "add_way": HUGE}]},
     "add_way"),
    ("/api/v1/transfers/", {"from_employee": "zhangsan", "to_employees": ["lisi"], "customers": [HUGE]},
     "customers"),
    ("/api/v1/transfers/preview/", {"from_employee": "zhangsan", "to_employees": ["lisi"],
                                    "customers": [{"customer": HUGE, "to_employee": "lisi"}]}, "customers"),
])
def test_an_out_of_range_integer_in_a_write_body_is_400_naming_it(crm, world, path, body, field):
    path = path.format(tag=world.vip.pk)
    body = {k: (world.level.pk if v == "{group}" else v) for k, v in body.items()}
    response = crm.post(path, body, format="json")
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert field in str(error["details"]) or field in error["message"], error


@pytest.mark.parametrize("path", [
    "/customers/customer/{n}/change/", "/customers/job/{n}/change/", "/customers/job/{n}/cancel/",
    "/org/employee/{n}/change/", "/customers/transfer/departed/{n}/",
])
def test_an_out_of_range_id_in_an_admin_path_is_not_a_500(world, path):
    from tests.conftest import login

    response = login(world.admin).get(path.format(n=HUGE))
    assert response.status_code in (302, 404), response.status_code


def test_the_id_path_converter_refuses_out_of_range_ids():
    from tagportal.converters import IdConverter

    converter = IdConverter()
    assert converter.to_python(str(2**63 - 1)) == 2**63 - 1
    for bad in (str(2**63), "0"):
        with pytest.raises(ValueError):
            converter.to_python(bad)
