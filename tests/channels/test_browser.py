"""In a real browser: a sales manager creates a channel code with tags (a locked group's tag
included), downloads its PNG, a customer adds through its state (the landing page's try-out), the
tags are on the customer's portrait and the add is on the code's chart; and the pages fit 390 px."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from channels.models import ChannelCode
from customers.models import Customer
from tests.conftest import browser_login
from tests.customers.world import world_fixture  # noqa: F401

pytestmark = pytest.mark.browser


@pytest.fixture
def scene(transactional_db, world):
    return world


def test_manager_creates_a_code_downloads_its_png_and_sees_the_add_on_the_portrait_and_the_chart(page, scene):
    w = scene
    browser_login(page, "boss")
    page.goto("/")
    page.get_by_role("link", name="渠道活码").first.click()
    page.wait_for_load_state("networkidle")
    page.get_by_role("link", name="增加 渠道活码").click()
    page.fill("#id_name", "春季车展")
    page.fill("#id_state", "expo_spring")
    page.locator("#tp-employees").get_by_label("张三 (zhangsan)").check()
    picker = page.locator("#tp-tag-picker")
    picker.locator(".tp-taggroup[data-group='客户等级']").get_by_text("VIP客户").click()
    picker.locator(".tp-taggroup[data-group='转化阶段']").get_by_text("高意向").click()
    picker.locator(".tp-taggroup[data-group='重点客户']").get_by_text("京津冀重点客户").click()
    page.fill("#id_welcome_message", "欢迎来到车展！")
    expect(page.locator("#tp-preview-tags .tp-chip")).to_have_count(3)  # the preview follows the picker
    page.locator("#tp-save").click()
    page.wait_for_load_state("networkidle")

    code = ChannelCode.objects.get(state="expo_spring")
    assert set(code.tags.values_list("pk", flat=True)) == {w.vip.pk, w.hot.pk, w.key_account.pk}
    assert code.department_id == w.sales.pk and code.owner_id == w.manager.pk
    expect(page.locator("h1")).to_contain_text("春季车展")
    expect(page.locator("#tp-preview")).to_contain_text("京津冀重点客户")

    with page.expect_download() as download_info:
        page.locator("#tp-downloads").get_by_role("link", name="PNG 8 cm").click()
    download = download_info.value
    assert download.suggested_filename == "expo_spring-8cm.png"
    with open(download.path(), "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"

    # A customer scans the code: the landing page's try-out adds 张三 with the code's state.
    page.goto("/c/expo_spring/")
    expect(page.locator("body")).to_contain_text("张三")
    page.fill("#tp-nickname", "车展客户小李")
    page.get_by_role("button", name="添加为联系人").click()
    expect(page.locator("#tp-try-result")).to_contain_text("欢迎来到车展！")

    customer = Customer.objects.get(name="车展客户小李")
    page.goto(f"/customers/customer/{customer.pk}/change/")
    for group, tag in (("客户等级", "VIP客户"), ("转化阶段", "高意向"), ("重点客户", "京津冀重点客户")):
        expect(page.locator(f".tp-taggroup[data-group='{group}']").get_by_label(tag, exact=True)).to_be_checked()
    expect(page.locator("#tag-history")).to_contain_text("春季车展")

    page.goto(f"/channels/channelcode/{code.pk}/change/")
    expect(page.locator("#tp-total-added")).to_have_text("1")
    page.wait_for_function("() => window.echarts && echarts.getInstanceByDom(document.getElementById('tp-days-chart'))")
    added = page.evaluate("""() => echarts.getInstanceByDom(document.getElementById('tp-days-chart'))
        .getOption().series[0].data.reduce((a, b) => a + (typeof b === 'object' ? b.value : b), 0)""")
    assert added == 1
    per_employee = page.evaluate("""() => echarts.getInstanceByDom(document.getElementById('tp-employees-chart'))
        .getOption().yAxis[0].data""")
    assert per_employee == ["张三"]


@pytest.mark.parametrize("path", ["/channels/channelcode/", "code", "add", "landing"])
def test_pages_fit_390_px(page, scene, path):
    from tests.channels.conftest import add_through, make_code

    w = scene
    code = make_code(name="门店", state="store", employees=[w.staff], tags=[w.vip, w.key_account],
                     description="门店前台的桌牌二维码" * 3, welcome_message="欢迎光临" * 10)
    add_through("store", w.staff, "wm390")
    url = {"code": f"/channels/channelcode/{code.pk}/change/", "add": "/channels/channelcode/add/",
           "landing": "/c/store/"}.get(path, path)
    page.set_viewport_size({"width": 390, "height": 844})
    browser_login(page, "admin")
    page.goto(url)
    page.wait_for_load_state("networkidle")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390


def test_code_list_headers_stay_above_their_columns_at_390_px(page, scene):
    """On a phone the list drops the 接待成员 and 标签 columns: their headers and their cells alike,
    so 今日新增 stays above today's count, not above the receiving employees."""
    from tests.channels.conftest import make_code

    w = scene
    make_code(name="门店", state="store", employees=[w.staff], tags=[w.vip])
    page.set_viewport_size({"width": 390, "height": 844})
    browser_login(page, "admin")
    page.goto("/channels/channelcode/")
    page.wait_for_load_state("networkidle")
    columns = page.evaluate("""() => {
        const visible = el => getComputedStyle(el).display !== 'none';
        const heads = [...document.querySelectorAll('#result_list thead th')].filter(visible);
        const cells = [...document.querySelectorAll('#result_list tbody tr:first-child > *')].filter(visible);
        return {heads: heads.map(th => th.className), cells: cells.map(td => td.className),
                lefts: heads.map((th, i) => [Math.round(th.getBoundingClientRect().left),
                                             Math.round(cells[i] ? cells[i].getBoundingClientRect().left : -1)])};
    }""")
    assert len(columns["heads"]) == len(columns["cells"]), columns
    assert all(head == cell for head, cell in columns["lefts"]), columns
