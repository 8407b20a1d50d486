"""At phone size (390 × 844, WeCom's sidebar on a phone): staff open the sidebar portrait from a
link, log in, tag a customer with one tap on 保存; nothing scrolls sideways there, nor on the desktop
portrait, the customer list and a job page."""

from __future__ import annotations

import os
import re

import pytest
from playwright.sync_api import expect

from customers.models import JobStatus, Message, Note, PersonalTagging, TagEvent, Tagging
from tests.factories import CustomerFactory, DepartmentFactory, EmployeeFactory, make_tag_group

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}


@pytest.fixture
def phone(browser, live_server):
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    context = browser.new_context(locale="zh-CN", base_url=live_server.url, viewport=PHONE,
                                  device_scale_factor=3, is_mobile=True, has_touch=True)
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


@pytest.fixture
def shop(transactional_db):
    from django.apps import apps

    from org.roles import sync_role_permissions

    sync_role_permissions(apps)
    sales = DepartmentFactory(name="销售部")
    staff = EmployeeFactory(userid="zhangwei", name="张伟", departments=[sales])
    other = EmployeeFactory(userid="lina", name="李娜", departments=[sales])
    _g, (vip, potential) = make_tag_group("客户等级", single_choice=True, tags=["VIP客户", "潜在客户"])
    _g, (hot, cold) = make_tag_group("意向", tags=["高意向", "低意向（需要长期跟进的客户）"])
    _g, (won,) = make_tag_group("成交状态", locked=True, tags=["已成交"])
    finance = DepartmentFactory(name="财务部")
    _g, (secret,) = make_tag_group("内部评级", departments=[finance], tags=["黑名单"])
    customer = CustomerFactory(external_userid="wmCustomerWithAVeryLongExternalUserIdThatMustNotOverflow0001",
                               name="上海某某国际贸易有限公司采购部王先生", followers=[staff, other])
    Tagging.objects.create(customer=customer, tag=potential)
    Tagging.objects.create(customer=customer, tag=won)
    Tagging.objects.create(customer=customer, tag=secret)  # hidden from 张伟: must survive his save
    for i in range(3):
        Message.objects.create(msgid=f"m{i}", customer=customer, employee=staff, direction="in" if i % 2 else "out",
                               content="您好，请问报价单什么时候能发过来？" * (i + 1))
    for _i in range(60):
        CustomerFactory(followers=[staff])
    return {"staff": staff, "customer": customer, "vip": vip, "potential": potential, "hot": hot,
            "won": won, "secret": secret}


WIDE_ELEMENTS = """() => {
  const width = document.documentElement.clientWidth, out = [];
  for (const el of document.querySelectorAll('body *')) {
    const r = el.getBoundingClientRect();
    if (r.right > width + 0.5 && r.width > 0) out.push(el.tagName + (el.id ? '#' + el.id : '') + '.'
      + String(el.className).split(' ').join('.') + ' ' + Math.round(r.right));
  }
  return out.slice(0, 15);
}"""


def no_sideways_scroll(page) -> None:
    """scrollWidth <= clientWidth, naming the elements that stick out when it fails."""
    scroll, client = page.evaluate("() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    assert scroll <= client, f"{page.url} scrolls sideways ({scroll} > {client}): {page.evaluate(WIDE_ELEMENTS)}"


def phone_login(page, userid: str) -> None:
    page.fill("input[name=username]", userid)
    page.fill("input[name=password]", "pass-1234")
    page.click("input[type=submit], button[type=submit]")
    page.wait_for_load_state("networkidle")


def test_sidebar_portrait_tags_a_customer_at_phone_size(phone, shop):
    customer = shop["customer"]
    phone.goto(f"/m/customers/{customer.external_userid}/")
    expect(phone).to_have_url(re.compile(r"/login/\?next="))  # a link opened outside: the usual login...
    phone_login(phone, "zhangwei")
    expect(phone).to_have_url(re.compile(rf"/m/customers/{customer.external_userid}/$"))  # ...and back
    expect(phone.locator("h1")).to_have_text(customer.name)
    no_sideways_scroll(phone)

    level = phone.locator("fieldset[data-group='客户等级']")
    expect(level.locator(".tp-m-seg")).to_be_visible()  # single-choice: a segmented choice
    locked = phone.locator("fieldset[data-group='成交状态']")
    expect(locked).to_have_class(re.compile("tp-readonly"))
    expect(locked.locator("input[type=checkbox]")).to_be_disabled()
    expect(phone.locator("fieldset[data-group='内部评级']")).to_have_count(0)
    box = level.get_by_text("VIP客户", exact=True).bounding_box()
    assert box["height"] >= 40  # touch-sized
    # A tag's colour paints its round chip, never the square label box around it (corners showed).
    for chip in phone.locator(".tp-m-chips .tp-m-chip").all():
        assert chip.evaluate("e => getComputedStyle(e).backgroundColor") == "rgba(0, 0, 0, 0)"

    level.get_by_text("VIP客户", exact=True).click()
    phone.locator("fieldset[data-group='意向']").get_by_text("高意向", exact=True).click()
    phone.locator("#personal").get_by_label("新建个人标签").fill("周五回电")
    phone.locator("#tp-m-save").click()
    phone.wait_for_load_state("networkidle")
    expect(phone.locator(".tp-m-messages")).to_contain_text("标签已保存")
    no_sideways_scroll(phone)

    held = set(Tagging.objects.filter(customer=customer).values_list("tag_id", flat=True))
    assert held == {shop["vip"].pk, shop["hot"].pk, shop["won"].pk, shop["secret"].pk}  # hidden + locked kept
    assert PersonalTagging.objects.filter(customer=customer, personal_tag__owner=shop["staff"],
                                          personal_tag__name="周五回电").exists()
    assert TagEvent.objects.filter(customer=customer, tag=shop["potential"], action="remove").exists()
    expect(phone.locator("fieldset[data-group='客户等级'] input:checked")).to_have_value(str(shop["vip"].pk))

    phone.locator("#notes textarea").fill("约了周五下午电话沟通报价。")
    phone.locator("#tp-m-add-note").click()
    phone.wait_for_load_state("networkidle")
    assert Note.objects.filter(customer=customer, author=shop["staff"]).count() == 1
    expect(phone.locator("#notes .tp-notes")).to_contain_text("约了周五下午电话沟通报价。")
    expect(phone.locator("#chat")).to_contain_text("报价单")
    no_sideways_scroll(phone)


def test_portrait_list_and_job_page_do_not_scroll_sideways_at_phone_size(phone, shop):
    customer = shop["customer"]
    phone.goto("/login/")
    phone_login(phone, "zhangwei")
    phone.goto("/customers/customer/")
    expect(phone.locator("#result_list")).to_be_visible()
    no_sideways_scroll(phone)
    phone.locator("summary", has_text="按标签筛选").click()
    no_sideways_scroll(phone)

    phone.goto(f"/customers/customer/{customer.pk}/change/")
    expect(phone.locator("#tags-form")).to_be_visible()
    no_sideways_scroll(phone)

    phone.goto("/m/")
    phone.locator("input[name=q]").fill("国际贸易")
    phone.locator("input[name=q]").press("Enter")
    expect(phone.locator("#tp-m-customers li")).to_have_count(1)
    expect(phone.locator("#tp-m-customers")).to_contain_text(customer.name)
    no_sideways_scroll(phone)

    from customers.jobs import bulk_tagging_start
    from org.actors import Actor

    job = bulk_tagging_start(actor=Actor(employee=shop["staff"]), add=[shop["hot"].pk], source="bulk",
                             filter_params={})
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED
    phone.goto(f"/customers/job/{job.pk}/change/")
    expect(phone.locator("#tp-progress-text")).to_have_text("100.0%")
    no_sideways_scroll(phone)
    phone.goto("/customers/job/")
    no_sideways_scroll(phone)


def test_the_portal_title_wraps_between_words_not_inside_them_at_phone_size(phone, shop):
    """On a phone the header has room for "tagportal" above "客户标签平台", not for "客户标签平 / 台"
    (Chinese may break between any two characters unless told not to); the tagline goes."""
    phone.goto("/login/")
    phone_login(phone, "zhangwei")
    for url in ("/", "/customers/customer/"):
        phone.goto(url)
        lines = phone.evaluate("""() => {
            const link = document.querySelector('#site-name a'), text = link.firstChild;
            const at = text.textContent.indexOf('客户标签平台'), range = document.createRange();
            range.setStart(text, at); range.setEnd(text, at + 6);
            return new Set([...range.getClientRects()].map(r => Math.round(r.top))).size;
        }""")
        assert lines == 1, url
        expect(phone.locator("#site-name .tp-brand-sub")).to_be_hidden()
        no_sideways_scroll(phone)


def test_short_customer_names_stay_on_one_line_in_the_list(phone, shop):
    """The tags column squeezed "客户12" into a column one character wide (Chinese breaks anywhere);
    names of up to four characters keep one line, at 390 px (the avatar gives way) and on a desktop,
    and the table still fits the phone's width."""
    phone.goto("/login/")
    phone_login(phone, "zhangwei")
    for width in (390, 1280):
        phone.set_viewport_size({"width": width, "height": 844})
        phone.goto("/customers/customer/")
        expect(phone.locator("#result_list")).to_be_visible()
        wrapped = phone.evaluate("""() => [...document.querySelectorAll('#result_list .tp-customer strong')]
            .filter(el => el.textContent.trim().length <= 4)
            .filter(el => el.getBoundingClientRect().height > 1.5 * parseFloat(getComputedStyle(el).lineHeight))
            .map(el => el.textContent)""")
        assert wrapped == [], (width, wrapped)
        table_fits = phone.evaluate("""() => { const t = document.getElementById('result_list');
            return t.getBoundingClientRect().right <= document.documentElement.clientWidth; }""")
        assert table_fits, width
        no_sideways_scroll(phone)
