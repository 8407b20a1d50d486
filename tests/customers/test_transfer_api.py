"""`transfers/` over the API: who may, 202 and per-customer outcomes, bad input 4xx with nothing moved."""

from __future__ import annotations

import pytest

from customers.models import FollowRelation, PersonalTagging, RelationStatus, Transfer, TransferOutcome
from org.models import EmployeeStatus
from tests.conftest import as_employee
from tests.customers.test_transfer import portrait, relation
from tests.factories import CustomerFactory, EmployeeFactory, make_api_client

pytestmark = pytest.mark.django_db

URL = "/api/v1/transfers/"


@pytest.fixture
def people(db):
    return {
        "hr": EmployeeFactory(userid="hr", roles=["hr"]),
        "zhang": EmployeeFactory(userid="zhangsan", name="张三"),
        "li": EmployeeFactory(userid="lisi", name="李四"),
        "wang": EmployeeFactory(userid="wangwu", name="王五"),
    }


def body(**overrides):
    return {"from_employee": "zhangsan", "to_employees": ["lisi"], "keep_portrait": True, "customers": None,
            "mark_departed": True, **overrides}


def test_hr_starts_a_transfer_and_reads_its_outcomes(people, django_capture_on_commit_callbacks):
    a, b = portrait(people["zhang"], CustomerFactory()), portrait(people["zhang"], CustomerFactory())
    hr = as_employee(people["hr"])
    with django_capture_on_commit_callbacks(execute=True):
        response = hr.post(URL, body(), format="json")
    assert response.status_code == 202, response.json()
    assert set(response.json()) == {"job", "transfer"}
    transfer = Transfer.objects.get(pk=response.json()["transfer"])
    assert transfer.job_id == response.json()["job"]

    detail = hr.get(f"{URL}{transfer.pk}/").json()
    assert detail["status"] == "succeeded" and detail["from_employee"] == "zhangsan"
    assert detail["to_employees"] == ["lisi"] and detail["keep_portrait"] is True
    assert {i["customer"]: i["outcome"] for i in detail["items"]} == {a.pk: "moved", b.pk: "moved"}
    assert detail["outcomes"] == {"moved": 2} and detail["created_by"] == "hr"
    assert [t["id"] for t in hr.get(URL).json()["results"]] == [transfer.pk]
    job = hr.get(f"/api/v1/jobs/{transfer.job_id}/")
    assert job.status_code == 200 and job.json()["done"] == 2
    assert relation(a, people["li"]).status == RelationStatus.ACTIVE
    people["zhang"].refresh_from_db()
    assert people["zhang"].status == EmployeeStatus.DEPARTED


def test_customers_chosen_per_inheritor_over_the_api(people, key_api, django_capture_on_commit_callbacks):
    a, b, c = (portrait(people["zhang"], CustomerFactory(), tags=(), notes=()) for _ in range(3))
    data = body(to_employees=["lisi", "wangwu"], mark_departed=False,
                customers=[{"customer": a.pk, "to_employee": "wangwu"}, b.pk])
    with django_capture_on_commit_callbacks(execute=True):
        response = key_api.post(URL, data, format="json")
    assert response.status_code == 202, response.json()
    items = key_api.get(f"{URL}{response.json()['transfer']}/").json()["items"]
    assert {i["customer"]: i["to_employee"] for i in items} == {a.pk: "wangwu", b.pk: "lisi"}
    assert relation(c, people["zhang"]).status == RelationStatus.ACTIVE


def test_preview_writes_nothing(people, key_api):
    portrait(people["zhang"], CustomerFactory())
    PersonalTagging.objects.count()
    response = key_api.post(f"{URL}preview/", body(to_employees=["lisi", "wangwu"]), format="json")
    assert response.status_code == 200
    plan = response.json()
    assert plan["customers"] == 1 and plan["errors"] == []
    assert plan["inheritors"][0]["personal_taggings"] == 2 and plan["inheritors"][0]["notes"] == 1
    assert not Transfer.objects.exists()
    people["zhang"].refresh_from_db()
    assert people["zhang"].status == EmployeeStatus.ACTIVE


@pytest.mark.parametrize("who", ["enterprise_key", "key_as_hr", "enterprise_admin"])
def test_allowed_callers(people, who, django_capture_on_commit_callbacks):
    portrait(people["zhang"], CustomerFactory())
    client = as_employee(EmployeeFactory(roles=["enterprise_admin"]))
    data = body()
    if who != "enterprise_admin":
        client = _key_client()
        if who == "key_as_hr":
            data["employee"] = "hr"
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(URL, data, format="json")
    assert response.status_code == 202, response.json()


def _key_client(read_only=False):
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_api_client('conn', read_only=read_only)[1]}")
    return client


@pytest.mark.parametrize("who", ["staff", "manager", "tag_admin", "key_as_staff", "read_only_key"])
def test_other_callers_are_refused_and_see_no_transfers(people, who):
    portrait(people["zhang"], CustomerFactory())
    existing = Transfer.objects.create(from_employee=people["wang"], created_by_employee=people["hr"],
                                       finished_at="2026-01-01T00:00:00Z")
    data = body()
    if who in ("key_as_staff", "read_only_key"):
        client = _key_client(read_only=who == "read_only_key")
        if who == "key_as_staff":
            data["employee"] = "lisi"
    else:
        client = as_employee(EmployeeFactory(roles=[who]))
    response = client.post(URL, data, format="json")
    assert response.status_code == 403, response.json()
    assert "error" in response.json()
    if who != "read_only_key":
        assert client.get(URL, {"employee": "lisi"} if who == "key_as_staff" else {}).json()["results"] == []
        assert client.get(f"{URL}{existing.pk}/", {"employee": "lisi"} if who == "key_as_staff" else {}
                          ).status_code == 404
    assert Transfer.objects.count() == 1
    assert not FollowRelation.objects.filter(status=RelationStatus.TRANSFERRED).exists()


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"from_employee": "nobody"}, "from_employee"),
        ({"to_employees": ["nobody"]}, "to_employees"),
        ({"to_employees": ["zhangsan"]}, None),
        ({"to_employees": ["gone"]}, None),
        ({"to_employees": []}, None),
        ({"customers": "all"}, "customers"),
        ({"customers": [999999]}, None),
        ({"customers": ["x"]}, "customers"),
        ({"keep_portrait": "maybe"}, "keep_portrait"),
    ],
)
def test_bad_input_is_400_and_nothing_moves(people, key_api, overrides, field):
    gone = EmployeeFactory(userid="gone")
    gone.status = EmployeeStatus.DEPARTED
    gone.save()
    portrait(people["zhang"], CustomerFactory())
    response = key_api.post(URL, body(**overrides), format="json")
    assert response.status_code == 400, response.json()
    error = response.json()["error"]
    assert error["message"]
    if field:
        assert field in str(error["details"])
    assert not Transfer.objects.exists()
    assert not FollowRelation.objects.filter(status=RelationStatus.TRANSFERRED).exists()
    people["zhang"].refresh_from_db()
    assert people["zhang"].status == EmployeeStatus.ACTIVE


def test_second_transfer_while_one_runs_is_409(people, key_api):
    portrait(people["zhang"], CustomerFactory())
    first = key_api.post(URL, body(mark_departed=False), format="json")  # job queued, not run (no commit)
    assert first.status_code == 202
    second = key_api.post(URL, body(to_employees=["wangwu"], mark_departed=False), format="json")
    assert second.status_code == 409 and second.json()["error"]["code"] == "conflict"
    assert Transfer.objects.count() == 1


def test_departed_employee_can_no_longer_act(people, key_api, django_capture_on_commit_callbacks):
    customer = portrait(people["zhang"], CustomerFactory())
    session = as_employee(people["zhang"])
    assert session.get("/api/v1/employees/").status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        assert key_api.post(URL, body(), format="json").status_code == 202
    # as a named employee through an API key
    response = key_api.get("/api/v1/employees/", {"employee": "zhangsan"})
    assert response.status_code == 403 and response.json()["error"]["code"] == "departed"
    # with the browser session opened before departure
    assert session.get("/api/v1/employees/").status_code in (401, 403)
    assert session.post(URL, body(from_employee="lisi", to_employees=["wangwu"]), format="json").status_code in (
        401, 403)
    assert relation(customer, people["li"]).status == RelationStatus.ACTIVE
    assert TransferOutcome.MOVED in set(Transfer.objects.get().items.values_list("outcome", flat=True))
