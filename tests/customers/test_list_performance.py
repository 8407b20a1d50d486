"""The customer list's fast paths (issue 4, performance) change nothing a user sees: the one-pass result
table is Django's table, the page's SQL doesn't grow with its rows, a count the planner costs too high
is left to the count endpoint, and the count's session settings never leak."""

from __future__ import annotations

import pytest
from django.contrib.admin.templatetags.admin_list import result_list
from django.db import connection
from django.template.loader import render_to_string
from django.test.html import parse_html
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

import customers.admin as customers_admin
from customers.models import PersonalTagging, Tagging
from customers.selectors import customers_count, parse_customer_filter
from tags.models import PersonalTag
from tests.conftest import login
from tests.customers.test_admin_customers import LIST, ids
from tests.customers.world import world_fixture  # noqa: F401
from tests.factories import CustomerFactory


def _many(w, n, *, followers, tags=()):
    customers = CustomerFactory.create_batch(n, followers=followers)
    Tagging.objects.bulk_create([Tagging(customer=c, tag=t) for c in customers for t in tags])
    return customers


def test_one_pass_table_is_djangos_table(tagged):
    """Checkbox (with its label), the change link keeping the filter, chips, personal tags, followers."""
    w = tagged
    mine = PersonalTag.objects.create(owner=w.manager, name="周末联系")
    PersonalTagging.objects.create(customer=w.c_hot, personal_tag=mine)
    CustomerFactory(name="<b>不是标签</b> & 公司", followers=[w.manager])
    tables = {}
    for params in ({"tags_all": ids(w.vip)}, {}, {"q": "客户", "tags_none": ids(w.won)}):
        response = login(w.manager).get(reverse(LIST), params)
        cl = response.context["cl"]
        ours = cl.results_html()
        assert ours, "the fast path applies to this list"
        djangos = render_to_string("admin/change_list_results.html", result_list(cl))
        assert parse_html(ours) == parse_html(djangos)
        assert ours in response.content.decode()
        tables[tuple(params)] = ours
    assert "_changelist_filters=q%3D" in tables[("q", "tags_none")]  # the link back keeps the filter
    assert "&lt;b&gt;不是标签&lt;/b&gt; &amp; 公司" in tables[()]
    assert "周末联系" in tables[()] and "VIP客户" in tables[("tags_all",)]


def test_table_escapes_customer_names(tagged):
    w = tagged
    CustomerFactory(name="<script>x</script>", followers=[w.staff])
    html = login(w.staff).get(reverse(LIST)).content.decode()
    assert "<script>x</script>" not in html and "&lt;script&gt;x&lt;/script&gt;" in html


def test_filtered_page_queries_do_not_grow_with_rows(tagged, django_assert_max_num_queries):
    w = tagged
    client = login(w.manager)
    params = {"tags_all": ids(w.vip, w.hot), "tags_none": ids(w.won)}
    _many(w, 52, followers=[w.staff], tags=(w.vip, w.hot))  # more than a page: the count path too
    client.get(reverse(LIST), params)  # warm caches (content types, sessions)
    with CaptureQueriesContext(connection) as few:
        client.get(reverse(LIST), params)
    _many(w, 70, followers=[w.staff, w.manager, w.team_staff], tags=(w.vip, w.hot, w.first_contact))
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = client.get(reverse(LIST), params)
    assert len(response.context["cl"].result_list) == 50
    # and the page stays a short list of queries (session, user, roles, taxonomy, probe, rows, chips...)
    assert len(few.captured_queries) <= 30, [q["sql"][:80] for q in few.captured_queries]


def test_costly_count_is_left_to_the_count_endpoint(tagged, monkeypatch):
    if connection.vendor != "postgresql":
        pytest.skip("EXPLAIN costs are PostgreSQL's")
    w = tagged
    _many(w, 55, followers=[w.staff], tags=(w.vip,))
    monkeypatch.setattr(customers_admin, "COUNT_COST_LIMIT", 0)  # every plan costs more than this
    client = login(w.staff)
    response = client.get(reverse(LIST), {"tags_all": ids(w.vip)})
    cl = response.context["cl"]
    assert cl.capped and not cl.exact_count and cl.result_count == 51
    names = [c.name for c in cl.result_list]
    assert len(names) == 50 and "热客户" not in names  # newest first: the 55 new ones fill the page
    html = response.content.decode()
    assert "data-count-url" in html and "51+" in html
    assert client.get(reverse("admin:customers_customer_count"), {"tags_all": ids(w.vip)}).json() == {"count": 57}
    # within the limit, the page counts exactly itself
    monkeypatch.setattr(customers_admin, "COUNT_COST_LIMIT", 10**9)
    cl = client.get(reverse(LIST), {"tags_all": ids(w.vip)}).context["cl"]
    assert cl.exact_count and cl.result_count == 57


def test_first_page_rows_come_from_the_probe_and_still_match_the_filter(tagged):
    w = tagged
    _many(w, 60, followers=[w.staff], tags=(w.vip, w.hot))
    client = login(w.staff)
    cl = client.get(reverse(LIST), {"tags_all": ids(w.vip, w.hot)}).context["cl"]
    assert len(cl.result_list) == 50
    assert [c.pk for c in cl.result_list] == sorted((c.pk for c in cl.result_list), reverse=True)
    second = client.get(reverse(LIST), {"tags_all": ids(w.vip, w.hot), "p": 2}).context["cl"]
    assert {c.pk for c in second.result_list}.isdisjoint({c.pk for c in cl.result_list})
    assert len(cl.result_list) + len(second.result_list) == 61


def test_count_settings_do_not_leak(tagged):
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL settings")
    w = tagged

    def current():
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_setting('max_parallel_workers_per_gather'), current_setting('jit'), "
                           "current_setting('work_mem'), current_setting('statement_timeout')")
            return cursor.fetchone()

    before = current()
    assert customers_count(employee=w.manager, flt=parse_customer_filter({"tags_all": ids(w.vip)})) == 2
    assert current() == before
    login(w.manager).get(reverse(LIST), {"tags_all": ids(w.vip)})
    assert current() == before
