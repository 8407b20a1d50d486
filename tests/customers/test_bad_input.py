"""Bad input is a 400 naming the field (or an admin message), never a 500: impossible dates,
NUL bytes anywhere, a database data error, a JSON array where an object belongs."""

from __future__ import annotations

import pytest
from django.db import transaction
from django.test import Client
from django.urls import reverse

from customers.models import FollowRelation, Note, Tagging
from tests.customers.world import actor, world_fixture  # noqa: F401

pytestmark = pytest.mark.django_db
URL = "/api/v1/customers/"


# ---------------------------------------------------------------- impossible dates


def test_upsert_with_an_impossible_date_is_400_naming_the_field(crm, world):
    response = crm.post(URL, {"external_userid": "wmDATE", "name": "x", "followers": [
        {"employee": "zhangsan", "added_at": "2024-13-45T00:00:00"}]}, format="json")
    assert response.status_code == 400, response.content
    assert "added_at" in response.json()["error"]["message"]
    assert not FollowRelation.objects.filter(customer__external_userid="wmDATE").exists()


# ---------------------------------------------------------------- NUL bytes


@pytest.mark.parametrize("param", ["employee", "q", "follower", "state", "external_userid", "tags_any"])
def test_nul_in_a_query_parameter_is_400(crm, world, param):
    response = crm.get(URL, {param: "a\x00b"})
    assert response.status_code == 400, response.content
    assert response.json()["error"]["details"]


@pytest.mark.parametrize("body", [
    {"name": "a\x00b"},
    {"crm_fields": {"level": "a\x00"}},
    {"crm_fields": {"a\x00": 1}},
    {"followers": [{"employee": "zhangsan", "remark": "王\x00总"}]},
])
def test_nul_in_an_upsert_is_400_naming_the_field(crm, world, body):
    response = crm.post(URL, {"external_userid": "wmNUL", **body}, format="json")
    assert response.status_code == 400, response.content
    assert next(iter(body)) in response.json()["error"]["message"]


def test_nul_in_a_note_is_400(crm, world):
    response = crm.post(f"{URL}{world.c_staff.pk}/notes/?employee=zhangsan", {"text": "a\x00b"}, format="json")
    assert response.status_code == 400, response.content
    assert not Note.objects.exists()


def test_a_database_data_error_is_mapped_to_400_not_500(world):
    # Safety net (tagportal/api/exceptions.py) for any path without a check of its own: a value the
    # database itself refuses is the caller's bad input.
    from django.db import DataError, connection

    from tagportal.api.exceptions import exception_handler

    if connection.vendor == "postgresql":
        with pytest.raises(DataError) as exc, connection.cursor() as cursor, transaction.atomic():
            cursor.execute("SELECT %s::int", ["a\x00b"])
        error = exc.value
    else:  # SQLite has no `::` cast and stores what PostgreSQL refuses: the error as the driver would raise it
        error = DataError("simulated")
    response = exception_handler(error, {})
    assert response.status_code == 400
    assert response.data["error"]["code"] == "invalid"


# ---------------------------------------------------------------- a JSON array body


def test_tags_endpoint_with_a_json_array_body_is_400(crm, world):
    response = crm.post(f"{URL}{world.c_staff.pk}/tags/", [world.vip.pk], format="json")
    assert response.status_code == 400, response.content
    assert not Tagging.objects.exists()




@pytest.mark.parametrize("query", ["q=%00", "follower=a%00", "state=%00x", "external_userid=%00"])
def test_nul_in_the_admin_customer_list_filter_is_a_message_not_a_500(world, query):
    client = Client()
    client.force_login(world.staff)
    response = client.get(reverse("admin:customers_customer_changelist") + "?" + query)
    assert response.status_code == 200
    assert "NUL" in response.content.decode()  # the filter error, shown as a message


@pytest.mark.parametrize("path", ["/api/v1/tags/", "/api/v1/tag-groups/", "/api/v1/jobs/"])
def test_nul_in_employee_is_400_on_every_endpoint(crm, path):
    response = crm.get(path, {"employee": "\x00"})
    assert response.status_code == 400, response.content
