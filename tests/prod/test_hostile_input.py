"""Property test: huge, negative, float, boolean, NUL and non-ASCII values thrown at every list filter,
every write body and every path id of the API (read from the OpenAPI schema, so new apps' routes are
covered as they land) never make a 5xx: bad input is a 4xx in the API error shape."""

from __future__ import annotations

import json
import re
from urllib.parse import quote

import pytest
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import bearer_client
from tests.customers.world import world_fixture  # noqa: F401

pytestmark = pytest.mark.django_db

HUGE = [2**63, 2**64 + 7, 99999999999999999999999, 10**40, -(2**63) - 1]
hostile_scalars = st.one_of(
    st.sampled_from(HUGE),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.integers(max_value=0),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([1.5, -0.0, 1e308, 1e-300]),
    st.booleans(),
    st.none(),
    st.sampled_from(["a\x00b", "\x00", "１２", "٣", "12\x00", "9" * 30, "-1", "1e3", "true", "null", "💥", "é",
                     " 1 ", "1,,2", ",", "0x10", "NaN", "\u202e1"]),
    st.text(max_size=12),
)
hostile = st.one_of(
    hostile_scalars,
    st.lists(hostile_scalars, max_size=4),
    st.dictionaries(st.sampled_from(["customer", "add", "id", "employee"]), hostile_scalars, max_size=3),
)

# Query keys from the schema, plus the filters API.md and the apps document (views may read more keys
# than the schema lists; unknown keys are ignored, so every list gets every key).
EXTRA_FILTERS = ["department", "tags_all", "tags_any", "tags_none", "group", "parent", "follower", "state",
                 "external_userid", "q", "updated_since", "added_from", "added_to", "usable", "employee",
                 "page_size", "cursor", "kind", "status", "from_employee", "role", "userid", "customer", "tag",
                 "rule", "code", "from", "to", "since", "until", "untagged", "lost_from", "lost_to", "activity"]
EXTRA_BODY_KEYS = ["add", "remove", "personal_add", "personal_remove", "customers", "customer", "operations",
                   "filter", "target", "departments", "parent", "group", "order", "employee", "employees", "text",
                   "tags", "exclude_tags", "sample_customers", "messages", "daily_limit", "min_hits",
                   "window_days", "from_employee", "to_employees", "keep_portrait", "name", "state"]


def _operations():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    components = schema.get("components", {}).get("schemas", {})
    lists, writes, details = [], [], []
    for path, ops in schema["paths"].items():
        if not path.startswith("/api/v1/"):
            continue
        for method, op in ops.items():
            method = method.upper()
            query = [p["name"] for p in op.get("parameters", []) if p.get("in") == "query"]
            if method == "GET" and "{" not in path:
                lists.append((path, sorted(set(query) | set(EXTRA_FILTERS))))
            if method in ("POST", "PATCH", "PUT"):
                ref = (op.get("requestBody", {}).get("content", {}).get("application/json", {})
                       .get("schema", {}).get("$ref", ""))
                props = components.get(ref.rsplit("/", 1)[-1], {}).get("properties", {}) if ref else {}
                writes.append((method, path, sorted(set(props) | set(EXTRA_BODY_KEYS))))
            if "{" in path:
                details.append((method, path))
    return lists, writes, details


LISTS, WRITES, DETAILS = _operations()
SETTINGS = settings(max_examples=15, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def _as_query_value(value) -> str:
    if isinstance(value, list | dict):
        return json.dumps(value) if isinstance(value, dict) else ",".join(str(v) for v in value)
    return "" if value is None else str(value)


def _check(response, what):
    assert response.status_code < 500, (what, response.status_code, response.content[:300])
    if response.status_code >= 400 and response["Content-Type"].startswith("application/json"):
        assert "error" in response.json(), (what, response.content[:300])


@pytest.fixture
def crm(world):
    return bearer_client(world.key)


def _fill(path: str, world) -> str:
    return re.sub(r"\{[^}]+\}", str(world.c_staff.pk) if "customers" in path else "1", path)


@pytest.mark.parametrize("path, keys", LISTS, ids=[p for p, _ in LISTS])
def test_hostile_list_filters_never_5xx(crm, world, path, keys):
    @SETTINGS
    @given(params=st.dictionaries(st.sampled_from(keys), hostile, min_size=1, max_size=3))
    def run(params):
        query = {k: _as_query_value(v) for k, v in params.items()}
        _check(crm.get(path, query), (path, query))

    run()


@pytest.mark.parametrize("method, path, keys", WRITES, ids=[f"{m} {p}" for m, p, _ in WRITES])
def test_hostile_write_bodies_never_5xx(crm, world, method, path, keys):
    url = _fill(path, world)

    @SETTINGS
    @given(body=st.dictionaries(st.sampled_from(keys), hostile, min_size=1, max_size=4))
    def run(body):
        response = crm.generic(method, url, json.dumps(body), content_type="application/json")
        _check(response, (method, url, body))

    run()


@pytest.mark.parametrize("method, path", DETAILS, ids=[f"{m} {p}" for m, p in DETAILS])
def test_hostile_path_ids_never_5xx(crm, world, method, path):
    @SETTINGS
    @given(value=hostile_scalars)
    def run(value):
        segment = quote(_as_query_value(value) or "x", safe="")
        url = re.sub(r"\{[^}]+\}", segment, path)
        response = crm.generic(method, url, "{}", content_type="application/json")
        _check(response, (method, url))
        if response.status_code == 404 and response["Content-Type"].startswith("application/json"):
            assert response.json()["error"]["code"] in ("not_found", "error")

    run()
