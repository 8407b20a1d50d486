"""The aggregates' refresh: a Celery beat entry, the task on a real worker, the 立即重新统计 button."""

import time

import pytest
from django.conf import settings

from insights.models import Snapshot
from tests.conftest import login
from tests.insights.world import live_world_fixture, world_fixture  # noqa: F401


def test_beat_runs_the_refresh_periodically():
    entry = settings.CELERY_BEAT_SCHEDULE["insights.refresh_aggregates"]
    assert entry["task"] == "insights.refresh_aggregates"
    assert entry["schedule"] == settings.INSIGHTS_REFRESH_MINUTES * 60


@pytest.mark.worker
def test_the_task_on_a_real_worker_counts_what_changed(live_world, celery_worker):
    from customers.models import Tagging
    from customers.selectors import customers_count, parse_customer_filter
    from insights.registry import get_panel
    from insights.selectors import parse_panel_query
    from insights.tasks import refresh_aggregates

    before = Snapshot.objects.count()
    Tagging.objects.filter(customer=live_world.orphan).delete()
    untagged_before = get_panel("untagged").selector(parse_panel_query({}, viewer=live_world.admin))
    Tagging.objects.create(customer=live_world.orphan, tag=live_world.vip)  # the orphan is tagged now
    refresh_aggregates.delay()
    deadline = time.monotonic() + 60
    while Snapshot.objects.count() == before and time.monotonic() < deadline:
        time.sleep(0.3)
    assert Snapshot.objects.count() == before + 1
    data = get_panel("untagged").selector(parse_panel_query({}, viewer=live_world.admin))
    assert data.as_of == Snapshot.objects.order_by("-refreshed_at").first().refreshed_at
    assert data.summary["untagged"] == untagged_before.summary["untagged"] - 1
    assert data.summary["untagged"] == customers_count(employee=live_world.admin,
                                                       flt=parse_customer_filter({"untagged": "1"}))


def test_recount_button_for_tag_admins_only(world):
    before = Snapshot.objects.count()
    response = login(world.manager_bj).post("/insights/snapshot/refresh/")
    assert response.status_code == 403 and Snapshot.objects.count() == before
    response = login(world.tag_admin).post("/insights/snapshot/refresh/", {"query": "from=2026-11-01"})
    assert response.status_code == 302 and response["Location"].endswith("?from=2026-11-01")
    assert Snapshot.objects.count() == before + 1  # eager here: the task ran inline


def test_dashboard_page_and_csv_for_each_role(world):
    for viewer in (world.admin, world.tag_admin, world.manager_bj, world.staff_bj):
        page = login(viewer).get("/insights/snapshot/")
        assert page.status_code == 200 and "数据看板" in page.content.decode()
    csv = login(world.manager_bj).get("/insights/snapshot/untagged.csv")
    assert csv["Content-Type"].startswith("text/csv")
    lines = csv.content.decode("utf-8-sig").splitlines()
    assert lines[0] == "key,label,客户数" and lines[2].startswith("untagged,无任何企业标签,")
    assert login(world.staff_bj).get("/insights/snapshot/customers_by_department.csv").status_code == 404
    assert login(world.admin).get("/insights/snapshot/untagged.csv?from=x").status_code == 400


def test_front_page_links_to_the_dashboard(world):
    for viewer in (world.tag_admin, world.manager_bj, world.staff_bj):
        html = login(viewer).get("/").content.decode()
        assert 'href="/insights/snapshot/"' in html
