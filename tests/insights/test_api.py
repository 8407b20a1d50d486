"""`GET insights/` and `insights/{panel}/`: the same numbers as the dashboard, bad input named."""

import datetime as dt

import pytest
from django.utils import timezone

from insights.registry import get_panel
from insights.selectors import parse_panel_query
from tests.conftest import as_employee
from tests.insights.world import world_fixture  # noqa: F401


def test_lists_the_panels_the_caller_may_read(world, read_only_api):
    keys = {p["key"] for p in read_only_api.get("/api/v1/insights/").json()["results"]}
    assert {"tag_coverage", "untagged", "tagging_activity", "customers_daily", "customers_by_department"} <= keys
    staff = {p["key"] for p in as_employee(world.staff_bj).get("/api/v1/insights/").json()["results"]}
    assert "customers_by_department" not in staff and "untagged" in staff


def test_same_numbers_as_the_selector(world, read_only_api):
    start = (timezone.localdate() - dt.timedelta(days=9)).isoformat()
    body = read_only_api.get("/api/v1/insights/customers_daily/", {"from": start,
                                                                  "department": world.bj.pk}).json()
    data = get_panel("customers_daily").selector(parse_panel_query({"from": start, "department": str(world.bj.pk)},
                                                                   viewer=None))
    assert body["from"] == start and body["department"] == world.bj.pk and len(body["keys"]) == 10
    assert [s["data"] for s in body["series"]] == [s.data for s in data.series]
    assert body["as_of"] is not None and body["series"][0]["links"][0].startswith("/customers/customer/?")


@pytest.mark.parametrize("params, field", [
    ({"from": "2026-02-30"}, "from"),
    ({"to": "yesterday"}, "to"),
    ({"from": "2026-11-20", "to": "2026-11-01"}, "from"),
    ({"from": "2020-01-01"}, "from"),
    ({"department": "abc"}, "department"),
    ({"department": "99999999999999999999"}, "department"),
    ({"department": "987654"}, "department"),
])
def test_bad_parameters_are_400_naming_the_field(world, read_only_api, params, field):
    response = read_only_api.get("/api/v1/insights/untagged/", params)
    assert response.status_code == 400
    assert field in response.json()["error"]["details"]


def test_too_long_a_range(world, read_only_api):
    today = timezone.localdate()
    response = read_only_api.get("/api/v1/insights/followups/", {
        "from": (today - dt.timedelta(days=380)).isoformat(), "to": today.isoformat()})
    assert response.status_code == 400 and "to" in response.json()["error"]["details"]


def test_unknown_or_forbidden_panel_is_404(world, api, read_only_api):
    assert read_only_api.get("/api/v1/insights/nope/").status_code == 404
    assert as_employee(world.staff_bj).get("/api/v1/insights/customers_by_department/").status_code == 404
    assert read_only_api.get("/api/v1/insights/customers_by_department/",
                             {"employee": world.staff_bj.userid}).status_code == 404
    assert api.get("/api/v1/insights/untagged/").status_code == 401
