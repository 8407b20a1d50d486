"""The demo shows motion: with no broker and TAGPORTAL_JOBS_IN_THREAD (what `make demo` sets), a
bulk job runs in a thread of the web process, so its page opens at once and the bar moves (seen in a
real browser); the job log names the runner in words; demo data gives each customer one level."""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import expect

from customers import jobs
from customers.models import JobStatus, Tagging
from tests.conftest import browser_login
from tests.factories import CustomerFactory, EmployeeFactory, make_tag_group


@pytest.fixture
def demo_mode(settings, monkeypatch):
    settings.TAGPORTAL_JOBS_IN_THREAD = True
    settings.CELERY_TASK_ALWAYS_EAGER = True
    monkeypatch.setattr(jobs, "JOB_MAX_CHUNK", 3)


@pytest.mark.browser
def test_the_progress_bar_moves_without_a_broker(demo_mode, page, transactional_db):
    from django.apps import apps

    from org.roles import sync_role_permissions

    sync_role_permissions(apps)
    manager = EmployeeFactory(userid="boss", roles=["manager"])
    _g, (vip,) = make_tag_group("Level", tags=["VIP"])
    CustomerFactory.create_batch(450, followers=[manager])

    browser_login(page, "boss")
    page.goto("/customers/customer/")
    page.locator("#action-toggle").check()
    page.locator(".actions .question a").click()  # all 450, not only this page
    page.locator("select[name=action]").select_option("bulk_tag_action")
    page.locator(".actions button[name=index]").click()
    page.locator(f".tp-bulk-tag[data-tag='{vip.pk}']").get_by_label("添加").check()
    page.locator("input[name=confirm]").click()
    expect(page).to_have_url(re.compile(r"/customers/job/\d+/change/$"))

    shown = set()
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        text = page.locator("#tp-progress-text").text_content()
        shown.add(text)
        if text == "100.0%" or page.locator("#tp-summary").count():
            break
        time.sleep(0.1)
    moving = {t for t in shown if t not in ("0%", "0.0%", "100.0%")}
    assert moving, f"the bar never showed a value between 0 and 100: {shown}"
    expect(page.locator("#tp-job-status")).to_have_text("已完成", timeout=90_000)
    assert Tagging.objects.filter(tag=vip).count() == 450
    log = page.locator(".tp-section", has_text="日志").text_content()
    assert "网页进程的后台线程（演示模式）" in log and "demo-thread" not in log


def test_without_the_setting_jobs_run_inline(db, settings, django_capture_on_commit_callbacks):
    from org.actors import Actor

    settings.TAGPORTAL_JOBS_IN_THREAD = False
    manager = EmployeeFactory(userid="boss", roles=["manager"])
    _g, (vip,) = make_tag_group("Level", tags=["VIP"])
    CustomerFactory.create_batch(3, followers=[manager])
    with django_capture_on_commit_callbacks(execute=True):
        job = jobs.bulk_tagging_start(actor=Actor(employee=manager), add=[vip.pk], source="bulk", filter_params={})
    job.refresh_from_db()  # done by the time the call returns: no thread
    assert job.status == JobStatus.SUCCEEDED


def test_demo_data_gives_each_customer_one_level(db):
    from django.core.management import call_command
    from django.db.models import Count

    from tags.models import TagGroup

    call_command("seed_demo", "--customers", "200")
    level = TagGroup.objects.get(name="客户等级", parent=None)
    assert level.single_choice
    doubles = (Tagging.objects.filter(tag__group=level).values("customer")
               .annotate(n=Count("pk")).filter(n__gt=1))
    assert not doubles.exists()
