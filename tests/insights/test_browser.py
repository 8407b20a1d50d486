"""In a real browser: a tag admin and a manager open 数据看板 from the front page, every chart is
drawn (a canvas with data points), a click on a bar opens the customer list filtered to exactly the
customers it counted, and the page fits a 390 px phone."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.conftest import browser_login
from tests.insights.world import live_world_fixture  # noqa: F401

pytestmark = pytest.mark.browser

POINT_JS = """([key, wanted]) => {
  // the middle of the first non-empty bar of series `wanted` (its drawn rectangle, from ECharts' layout)
  const el = document.querySelector(`#panel-${key} [data-chart]`);
  const chart = echarts.getInstanceByDom(el);
  const values = chart.getOption().series[wanted].data.map(d => d.value);
  const i = values.findIndex(v => v > 0);
  if (i < 0) return null;
  const r = chart.getModel().getSeriesByIndex(wanted).getData().getItemLayout(i);
  const box = el.getBoundingClientRect();
  return {x: box.left + r.x + r.width / 2, y: box.top + r.y + r.height / 2, value: values[i]};
}"""


def open_dashboard(page, userid):
    browser_login(page, userid)
    page.get_by_role("link", name="数据看板").first.click()
    expect(page).to_have_url(re.compile(r"/insights/snapshot/"))
    panels = page.locator("[data-panel]")
    expect(panels.first).to_be_visible()
    n = panels.count()
    expect(page.locator("[data-panel][data-loaded='1']")).to_have_count(n, timeout=20_000)
    return n


def assert_every_chart_drawn(page):
    for card in page.locator("[data-panel]").all():
        key = card.get_attribute("data-panel")
        chart = card.locator("[data-chart]")
        assert chart.locator("canvas").count() >= 1, key
        assert int(chart.get_attribute("data-points") or 0) > 0, key


def list_count(page) -> int:
    text = page.locator(".tp-count strong").first.inner_text()
    return int(text.replace(",", "").rstrip("+"))


@pytest.mark.parametrize("who", ["tag_admin", "manager_bj"])
def test_dashboard_draws_each_chart_and_a_click_shows_the_same_customers(page, live_world, who):
    viewer = getattr(live_world, who)
    n = open_dashboard(page, viewer.userid)
    assert n >= 8
    assert_every_chart_drawn(page)
    # the panels channels and rules contribute through the registry are there and drawn too
    contributed = ["channel_adds_daily", "channel_retention"] + (["rule_hits_daily"] if who == "tag_admin" else [])
    for key in contributed:
        assert page.locator(f"#panel-{key} [data-chart] canvas").count() >= 1, key
    expect(page.locator(".tp-dash-asof")).to_contain_text("数据截至")

    # a bar of 每日新增与流失客户 → the list of the customers added that day
    page.locator("#panel-customers_daily").scroll_into_view_if_needed()
    point = page.evaluate(POINT_JS, ["customers_daily", 0])
    page.mouse.click(point["x"], point["y"])
    expect(page).to_have_url(re.compile(r"/customers/customer/\?.*added_from="))
    assert list_count(page) == point["value"]

    # the untagged figure → the list filtered to customers without any enterprise tag
    page.go_back()
    link = page.locator("#panel-untagged [data-untagged]")
    expect(link).to_be_visible()
    untagged = int(link.get_attribute("data-untagged"))
    link.click()
    expect(page.locator("[data-insight-filter]")).to_contain_text("没有任何企业标签")
    assert list_count(page) == untagged


def test_manager_sees_only_their_department_in_the_picker_and_a_bar_of_tags(page, live_world):
    open_dashboard(page, live_world.manager_bj.userid)
    options = page.locator("select[name=department] option").all_inner_texts()
    assert any("北京销售部" in o for o in options) and not any("上海" in o for o in options)
    texts = page.evaluate("""() => [...document.querySelectorAll('[data-chart]')].map(
        el => JSON.stringify(echarts.getInstanceByDom(el)?.getOption()?.yAxis || ''))""")
    assert not any("沪A活动" in t for t in texts)
    # a bar of 最常用的标签 → that tag's customers
    page.locator("#panel-top_tags").scroll_into_view_if_needed()
    point = page.evaluate(POINT_JS, ["top_tags", 0])
    page.mouse.click(point["x"], point["y"])
    expect(page).to_have_url(re.compile(r"tags_all="))
    assert list_count(page) == point["value"]


def test_date_range_and_csv(page, live_world):
    open_dashboard(page, live_world.tag_admin.userid)
    page.get_by_role("button", name="近 7 天").click()
    expect(page).to_have_url(re.compile(r"from=\d{4}-\d\d-\d\d&to="))
    expect(page.locator("#panel-customers_daily[data-loaded='1']")).to_be_visible()
    points = page.locator("#panel-customers_daily [data-chart]").get_attribute("data-points")
    assert points == "14"  # 7 days x (new, lost)
    with page.expect_download() as info:
        page.locator("#panel-customers_daily .tp-panel-csv").click()
    with open(info.value.path(), encoding="utf-8-sig") as f:
        content = f.read().splitlines()
    assert content[0] == "key,label,新增客户,流失客户" and len(content) == 8


def test_fits_a_phone(page, live_world):
    page.set_viewport_size({"width": 390, "height": 844})
    open_dashboard(page, live_world.manager_bj.userid)
    assert_every_chart_drawn(page)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390
    for card in page.locator("[data-panel] [data-chart] canvas").all()[:3]:
        assert card.bounding_box()["width"] <= 390
