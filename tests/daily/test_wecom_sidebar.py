"""The sidebar with WeCom connected (the simulator stands in for WeCom): the entry page injects
wx.agentConfig with a signature made from the app's jsapi ticket and loads the JS-SDK only then;
opened inside WeCom without a session, WeCom OAuth (snsapi_base) logs the employee in and returns to
the page; a forged state, an unknown or departed member get the usual login instead. The 待分配离职成员
page shows WeCom's unassigned count beside the portal's."""

from __future__ import annotations

import hashlib
import json
import re
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client
from django.urls import reverse

from org.models import EmployeeStatus
from tests.conftest import login
from tests.factories import CustomerFactory, EmployeeFactory
from tests.wecom.conftest import wecom_fake  # noqa: F401 - the simulator fixture
from wecom.simulator.routes_sidebar import TICKET

pytestmark = pytest.mark.django_db
WECOM_UA = "Mozilla/5.0 (iPhone) AppleWebKit/605.1.15 wxwork/4.1.22 MicroMessenger/7.0.1 Language/zh"


@pytest.fixture
def staff(db):
    employee = EmployeeFactory(userid="zhangwei", name="张伟")
    customer = CustomerFactory(external_userid="wmAAA001", name="王先生", followers=[employee])
    return employee, customer


def agent_config(html: str) -> dict:
    return json.loads(re.search(r'<script id="tp-agent-config" type="application/json">(.*?)</script>', html).group(1))


def test_standalone_the_page_loads_no_jssdk_and_uses_the_usual_login(staff):
    employee, customer = staff
    page = login(employee).get("/m/").content.decode()
    assert "res.wx.qq.com" not in page and "tp-agent-config" not in page
    response = Client(HTTP_USER_AGENT=WECOM_UA).get(f"/m/customers/{customer.external_userid}/")
    assert response.status_code == 302 and response.url.startswith("/login/?next=")


def test_connected_entry_page_signs_agent_config_with_the_app_ticket(wecom_fake, staff):  # noqa: F811
    employee, _customer = staff
    page = login(employee).get("/m/").content.decode()
    assert '<script src="https://res.wx.qq.com/open/js/jweixin-1.2.0.js"></script>' in page
    config = agent_config(page)
    assert config["corpid"] == wecom_fake.state.corp_id and config["agentid"] == wecom_fake.state.agent_id
    signed = f"jsapi_ticket={TICKET}&noncestr={config['nonceStr']}&timestamp={config['timestamp']}&url=http://testserver/m/"
    assert config["signature"] == hashlib.sha1(signed.encode()).hexdigest()
    assert "getCurExternalContact" in page
    assert len(wecom_fake.calls("ticket/get")) == 1
    login(employee).get("/m/")
    assert len(wecom_fake.calls("ticket/get")) == 1  # the ticket is cached


def test_inside_wecom_oauth_logs_the_employee_in_and_returns_to_the_page(wecom_fake, staff):  # noqa: F811
    _employee, customer = staff
    wecom_fake.state.add_user("zhangwei", "张伟")
    browser = Client(HTTP_USER_AGENT=WECOM_UA)
    page_url = f"/m/customers/{customer.external_userid}/"
    to_wecom = browser.get(page_url)
    assert to_wecom.status_code == 302
    url = urlsplit(to_wecom.url)
    assert f"{url.scheme}://{url.netloc}{url.path}" == "https://open.weixin.qq.com/connect/oauth2/authorize"
    assert url.fragment == "wechat_redirect"
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    assert query["scope"] == "snsapi_base" and query["appid"] == wecom_fake.state.corp_id
    assert query["redirect_uri"] == "http://testserver/wecom/oauth/"

    back = browser.get(reverse("wecom:oauth"), {"code": "simcode-zhangwei", "state": query["state"]})
    assert back.status_code == 302 and back.url == page_url
    portrait = browser.get(page_url)
    assert portrait.status_code == 200 and "王先生" in portrait.content.decode()
    assert wecom_fake.calls("auth/getuserinfo")


@pytest.mark.parametrize("case", ["forged state", "unknown code", "departed"])
def test_oauth_refusals_fall_back_to_the_login_form(wecom_fake, staff, case):  # noqa: F811
    employee, customer = staff
    wecom_fake.state.add_user("zhangwei", "张伟")
    if case == "departed":
        employee.status = EmployeeStatus.DEPARTED
        employee.save()
    browser = Client(HTTP_USER_AGENT=WECOM_UA)
    state = parse_qs(urlsplit(browser.get(f"/m/customers/{customer.external_userid}/").url).query)["state"][0]
    code = "simcode-nobody" if case == "unknown code" else "simcode-zhangwei"
    back = browser.get(reverse("wecom:oauth"), {"code": code, "state": "forged" if case == "forged state" else state})
    assert back.status_code == 302 and back.url.startswith("/login/?next=")
    assert "_auth_user_id" not in browser.session


def test_pending_page_shows_wecoms_unassigned_count(wecom_fake, db):  # noqa: F811
    hr = EmployeeFactory(userid="hr", roles=["hr"])
    leaver = EmployeeFactory(userid="leaver", name="Leo")
    CustomerFactory.create_batch(2, followers=[leaver])
    leaver.status = EmployeeStatus.DEPARTED
    leaver.save()
    for i in range(3):
        wecom_fake.state.add_contact(userid="leaver", external_userid=f"wmLEO{i}", welcome_code=False)
    wecom_fake.state.users["leaver"].status = 5
    page = login(hr).get(reverse("admin:customers_transfer_pending")).content.decode()
    assert "企业微信待分配" in page
    row = re.search(r'<tr data-userid="leaver">(.*?)</tr>', page, re.S).group(1)
    assert re.findall(r'<td class="num[^"]*">(\d+)</td>', row) == ["2", "3"]
