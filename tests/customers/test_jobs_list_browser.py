"""The 任务 list in a real browser: at 1280 px with the side menu and the filters open its columns
squeezed to one character a line and the last one was cut off; now every cell reads on its lines,
nothing is cut, the least useful columns leave as the table narrows, and it still fits 390 px."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from customers.jobs import bulk_tagging_start, job_undo
from customers.models import Job, JobStatus, TagSource
from org.actors import Actor
from tests.conftest import browser_login
from tests.factories import CustomerFactory, EmployeeFactory, make_api_client, make_tag_group

pytestmark = pytest.mark.browser

# Per visible cell of the list's body: its text, its lines, and the fewest characters on one line
# (a Chinese word squeezed to one character a line has lines of one character).
CELL_LINES = """() => [...document.querySelectorAll('#result_list tbody tr > *')].filter(c => c.offsetWidth > 0)
  .map(cell => {
    const lines = new Map(), walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      for (let i = 0; i < node.length; i++) {
        if (!node.data[i].trim()) continue;
        const range = document.createRange(); range.setStart(node, i); range.setEnd(node, i + 1);
        const rect = range.getClientRects()[0];
        if (rect && rect.width) lines.set(Math.round(rect.top), (lines.get(Math.round(rect.top)) || 0) + 1);
      }
    }
    return {column: cell.className.split(' ')[0], text: cell.textContent.trim(), lines: lines.size,
            fewest: Math.min(...lines.values())};
  })"""
TABLE_FITS = """() => { const box = document.querySelector('#changelist-form .results');
  return [box.scrollWidth, box.clientWidth, document.documentElement.scrollWidth,
          document.documentElement.clientWidth]; }"""


@pytest.fixture
def jobs(transactional_db):
    from django.apps import apps

    from org.roles import sync_role_permissions

    sync_role_permissions(apps)
    admin = EmployeeFactory(userid="boss", name="管理员", roles=["enterprise_admin"])
    manager = EmployeeFactory(userid="manager_beijing", name="孙伟", roles=["manager"])
    crm, _key = make_api_client("销售易 CRM 同步（生产环境）")
    _g, (vip, cold, hot) = make_tag_group("客户等级", tags=["VIP客户", "冷淡", "高意向"])
    CustomerFactory.create_batch(30, followers=[manager])
    first = bulk_tagging_start(actor=Actor(employee=manager), add=[vip.pk], remove=[cold.pk],
                               source=TagSource.BULK, filter_params={})
    bulk_tagging_start(actor=Actor(employee=manager, api_client=crm), add=[hot.pk], remove=[vip.pk],
                       source=TagSource.API, filter_params={})
    bulk_tagging_start(actor=Actor(api_client=crm), add=[cold.pk], source=TagSource.API, filter_params={})
    job_undo(actor=Actor(employee=manager), job=first, source=TagSource.BULK)
    assert set(Job.objects.values_list("status", flat=True)) == {JobStatus.SUCCEEDED}
    return admin


def test_the_jobs_list_reads_at_1280_px_with_the_menu_open_and_fits_390_px(page, jobs):
    browser_login(page, "boss")
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto("/customers/job/")
    expect(page.locator("#nav-sidebar")).to_be_visible()  # the side menu open, as it opens by default
    expect(page.locator("#changelist-filter")).to_be_visible()
    expect(page.locator("#result_list tbody tr")).to_have_count(4)

    scroll, box, page_scroll, page_width = page.evaluate(TABLE_FITS)
    assert scroll <= box and page_scroll <= page_width, "the table is cut off: it scrolls sideways in its box"
    cells = page.evaluate(CELL_LINES)
    squeezed = [c for c in cells if c["lines"] > 1 and c["fewest"] < 2]
    assert squeezed == [], squeezed
    one_line = [c for c in cells if c["column"] in ("field-job_cell", "field-status_cell", "field-actor_cell",
                                                     "field-created_cell") and c["lines"] != 1]
    assert one_line == [], one_line
    shown = page.locator("#result_list thead th:visible").all_inner_texts()
    assert [t.strip() for t in shown] == ["任务", "状态", "执行者", "结果", "创建时间"]
    actor = page.locator("#result_list .tp-job-actor", has_text="API: 销售易").first
    assert actor.get_attribute("title") == "API: 销售易 CRM 同步（生产环境）"  # cut with "…": whole on hover

    page.set_viewport_size({"width": 1600, "height": 900})  # more room: more columns
    assert page.locator("#result_list thead th:visible").count() > 5
    page.set_viewport_size({"width": 390, "height": 844})
    scroll, box, page_scroll, page_width = page.evaluate(TABLE_FITS)
    assert scroll <= box and page_scroll <= page_width
    assert page.locator("#result_list thead th:visible").all_inner_texts() == ["任务", "状态", "结果"]
    assert [c for c in page.evaluate(CELL_LINES) if c["lines"] > 1 and c["fewest"] < 2] == []
