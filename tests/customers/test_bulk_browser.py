"""In a real browser, with a real worker: a manager filters the customer list, selects all matching
customers (more than one page), adds a tag, watches the job's bar reach 100%, and undoes it."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from customers.models import Job, JobKind, JobStatus, Tagging
from tests.conftest import browser_login
from tests.factories import CustomerFactory, EmployeeFactory, make_tag_group

pytestmark = [pytest.mark.browser, pytest.mark.worker]


@pytest.fixture
def small_chunks(monkeypatch):
    monkeypatch.setenv("TAGPORTAL_JOB_MAX_CHUNK", "5")  # the worker's job takes many chunks: a moving bar


@pytest.fixture
def shop(transactional_db):
    from django.apps import apps

    from org.roles import sync_role_permissions

    sync_role_permissions(apps)  # an earlier transactional test may have flushed the role groups' permissions
    _g, (vip, potential) = make_tag_group("客户等级", tags=["VIP客户", "潜在客户"])
    manager = EmployeeFactory(userid="boss", name="王经理", roles=["manager"])
    matching = CustomerFactory.create_batch(63, followers=[manager])
    for customer in matching:
        Tagging.objects.create(customer=customer, tag=potential)
    others = CustomerFactory.create_batch(4, followers=[manager])
    Tagging.objects.create(customer=others[0], tag=vip)  # had VIP before: the undo must not touch it
    return {"vip": vip, "potential": potential, "matching": matching, "others": others}


def test_select_all_matching_add_tag_watch_progress_and_undo(small_chunks, celery_worker, page, shop):
    page.on("dialog", lambda dialog: dialog.accept())
    browser_login(page, "boss")
    page.goto("/customers/customer/")

    page.locator("summary", has_text="按标签筛选").click()
    page.locator("label.tp-mode-any").click()
    page.locator(".tp-tree").get_by_role("button", name="潜在客户", exact=True).click()
    page.get_by_role("button", name="筛选", exact=True).click()
    page.wait_for_load_state("networkidle")
    expect(page.locator(".tp-count")).to_contain_text("共 63 位客户符合条件")

    page.locator("#action-toggle").check()  # every row of this page (50)...
    page.locator(".actions .question a").click()  # ...then "select all 63"
    page.locator("select[name=action]").select_option("bulk_tag_action")
    page.locator(".actions button[name=index]").click()
    page.wait_for_load_state("networkidle")

    expect(page.locator("#tp-bulk-count")).to_contain_text("全部 63 位客户")
    vip_row = page.locator(f".tp-bulk-tag[data-tag='{shop['vip'].pk}']")
    expect(vip_row).to_contain_text("VIP客户")
    vip_row.get_by_label("添加").check()
    expect(page.locator("#tp-bulk-summary")).to_have_text("将为 63 位客户添加：VIP客户")
    vip_row.get_by_label("移除").check()  # a tag is added or removed, never both: the summary says which
    expect(page.locator("#tp-bulk-summary")).to_have_text("将为 63 位客户移除：VIP客户")
    vip_row.get_by_label("添加").check()
    expect(vip_row.get_by_label("移除")).not_to_be_checked()
    page.locator("input[name=confirm]").click()

    expect(page).to_have_url(re.compile(r"/customers/job/\d+/change/$"))
    job = Job.objects.get(kind=JobKind.BULK_TAGGING)
    assert job.params["filter"] == {"tags_any": str(shop["potential"].pk)}
    expect(page.locator("#tp-progress-text")).to_have_text("100.0%", timeout=60_000)
    expect(page.locator("#tp-job-status")).to_have_text("已完成", timeout=15_000)
    expect(page.locator("#tp-summary")).to_contain_text("63")
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED and job.done == job.total == 63
    vip_holders = set(Tagging.objects.filter(tag=shop["vip"]).values_list("customer_id", flat=True))
    assert vip_holders == {c.pk for c in shop["matching"]} | {shop["others"][0].pk}

    page.locator("#tp-undo").click()
    expect(page).to_have_url(re.compile(r"/customers/job/\d+/change/$"))
    expect(page.locator("h1")).to_contain_text("撤销")
    expect(page.locator("#tp-job-status")).to_have_text("已完成", timeout=60_000)
    undo = Job.objects.get(kind=JobKind.UNDO)
    assert undo.undo_of_id == job.pk and undo.status == JobStatus.SUCCEEDED
    assert set(Tagging.objects.filter(tag=shop["vip"]).values_list("customer_id", flat=True)) == {
        shop["others"][0].pk}
