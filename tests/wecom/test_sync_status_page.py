"""企业微信连接, the status page: what an enterprise admin sees (configured or not, callback URL,
events, failures with retry, outbox backlog, the last pull) and the pull button, in a real browser
at phone width too."""

from __future__ import annotations

import pytest
from django.urls import reverse

from customers.models import Job, JobStatus, TagEvent, TagSource
from customers.services import customer_tags_update
from tests.conftest import browser_login, login
from tests.factories import CustomerFactory, EmployeeFactory, make_tag_group
from tests.wecom.conftest import post_event
from tests.wecom.sync_world import ADMIN, customer, employee, push, taxonomy
from wecom.models import EventStatus, OutboxItem, WeComEvent
from wecom.services import wecom_events_process

URL = "/wecom/outboxcursor/"


def test_the_page_is_in_the_menu_for_enterprise_admins_only(db, admin_user):
    assert reverse("admin:wecom_status") == URL
    page = login(admin_user).get("/")
    assert URL in page.content.decode()
    staff = EmployeeFactory(roles=["staff"])
    assert login(staff).get(URL).status_code in (302, 403)
    tag_admin = EmployeeFactory(roles=["tag_admin"])
    assert login(tag_admin).get(URL).status_code in (302, 403)


def test_standalone_it_says_what_is_missing(db, admin_user, settings):
    settings.WECOM_CORP_ID = settings.WECOM_SECRET = settings.WECOM_TOKEN = settings.WECOM_AES_KEY = ""
    html = login(admin_user).get(URL).content.decode()
    assert "未配置：门户独立运行" in html
    assert "WECOM_CORP_ID" in html and "WECOM_AES_KEY" in html
    assert "http://testserver/wecom/callback/" in html
    assert "从企业微信全量同步" not in html  # no pull button without the API settings


def test_standalone_it_says_nothing_is_sent_instead_of_showing_a_backlog(db, admin_user, settings):
    """With no connection the audit still grows (every tag change) and nothing reads it: "未读取的标签变更
    25837" read like a fault. The page says plainly that nothing is sent, and what happens on connecting."""
    settings.WECOM_CORP_ID = settings.WECOM_SECRET = settings.WECOM_TOKEN = settings.WECOM_AES_KEY = ""
    zhang = EmployeeFactory(userid="zhangwei", roles=["staff"])
    _g, tags = make_tag_group("客户等级", tags=["VIP", "普通"])
    for i in range(3):
        c = CustomerFactory(external_userid=f"wmSolo{i}", followers=[zhang])
        customer_tags_update(actor=ADMIN, customer=c, add=[t.pk for t in tags], source=TagSource.API)
    assert TagEvent.objects.count() == 6
    html = login(admin_user).get(URL).content.decode()
    outbox = html[html.index('id="tp-ws-outbox"'):html.index('id="tp-ws-pull"')]
    assert "门户未连接企业微信，不向企业微信发送任何内容。" in outbox
    assert "连接后，先做一次全量同步" in outbox
    for backlog in ("未读取的标签变更", "待发送的客户", "tp-ws-backlog"):
        assert backlog not in outbox


def test_events_backlog_and_failures_show_and_can_be_retried(db, admin_user, wecom_fake, settings):
    settings.WECOM_OUTBOX_RETRY_SECONDS = 0
    zhang = employee(wecom_fake, "zhangwei")
    t = taxonomy()
    push()
    c = customer(wecom_fake, "wmSTAT", zhang)
    # an event that fails: transfer_fail for an unknown FailReason is fine; make a tag event fail instead
    wecom_fake.fail("externalcontact/get_corp_tag_list", 60020, times=50)
    post_event(wecom_fake, {"ToUserName": "corp", "FromUserName": "sys", "CreateTime": 1700000000,
                            "MsgType": "event", "Event": "change_external_tag", "Id": "etX", "TagType": "tag",
                            "ChangeType": "update"})
    wecom_events_process()
    failed = WeComEvent.objects.get(event="change_external_tag")
    assert failed.status == EventStatus.FAILED
    # a tag change WeCom refuses for good
    wecom_fake.fail("externalcontact/mark_tag", 60020, times=50)
    customer_tags_update(actor=ADMIN, customer=c, add=[t["vip"].pk], source=TagSource.API)
    for _ in range(10):
        push()
    assert OutboxItem.objects.get(customer=c).status == "failed"
    client = login(admin_user)
    html = client.get(URL).content.decode()
    assert "已连接企业微信" in html and wecom_fake.state.corp_id in html
    assert 'id="tp-ws-events-failed">1<' in html
    assert "60020" in html and "wmSTAT" in html
    assert 'id="tp-ws-outbox-failed">1<' in html
    # retry both once WeCom answers again
    wecom_fake.state.failures.clear()
    client.post(reverse("admin:wecom_status_retry_event", args=[failed.pk]))
    wecom_events_process()
    assert WeComEvent.objects.get(pk=failed.pk).status == EventStatus.DONE
    client.post(reverse("admin:wecom_status_retry_outbox"))
    push()
    assert OutboxItem.objects.get(customer=c).status == "done"
    html = client.get(URL).content.decode()
    assert 'id="tp-ws-outbox-failed">0<' in html


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_an_admin_starts_a_pull_and_sees_it_finish_at_phone_width(page, live_server, wecom_fake):
    EmployeeFactory(userid="admin", name="管理员", roles=["enterprise_admin"], is_superuser=True)
    wecom_fake.state.add_department(2, "销售部", parentid=1)
    wecom_fake.state.add_user("zhangwei", name="张伟", department=[2])
    for i in range(5):
        wecom_fake.state.add_contact(userid="zhangwei", external_userid=f"wmB{i}", name=f"客户{i}", welcome_code=False)
    page.set_viewport_size({"width": 390, "height": 844})
    browser_login(page, "admin")
    page.goto(URL)
    assert page.locator("#tp-ws-callback").inner_text().endswith("/wecom/callback/")
    page.click("#tp-ws-pull-button")
    page.wait_for_selector("#tp-ws-pull-counts")
    assert page.locator("#tp-job-status").inner_text() == "已完成"
    assert page.locator("#tp-progress-text").inner_text() == "100.0%"
    assert "5" in page.locator("#tp-ws-pull-counts").inner_text()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    job = Job.objects.get(kind="wecom_sync")
    assert job.status == JobStatus.SUCCEEDED and job.actor_employee.userid == "admin"
