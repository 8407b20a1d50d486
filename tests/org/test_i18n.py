"""Portal language, the departed-login message, the seed_demo URL."""

import io
import os

import pytest

from org.models import EmployeeStatus
from tests.factories import EmployeeFactory

pytestmark = pytest.mark.django_db


def test_portal_is_chinese_for_an_english_browser_until_english_is_picked(client):
    page = client.get("/login/", HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9")
    assert "用户名" in page.content.decode() or "登录" in page.content.decode()
    assert "Log in" not in page.content.decode()

    client.post("/i18n/setlang/", {"language": "en", "next": "/login/"})
    page = client.get("/login/", HTTP_ACCEPT_LANGUAGE="zh-CN")
    assert "Log in" in page.content.decode()


def test_api_still_honours_accept_language(key_api):  # the portal ignores it, the API does not
    en = key_api.get("/api/v1/nothing-here/", HTTP_ACCEPT_LANGUAGE="en")
    zh = key_api.get("/api/v1/nothing-here/", HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert en.status_code == zh.status_code == 404
    assert en.json()["error"]["message"] != zh.json()["error"]["message"]


def test_portal_pages_calling_the_api_get_the_pages_language(client):
    """The dashboard's charts fetch the API with the session: an English browser on the Chinese
    portal gets Chinese labels; after the switch to English, English ones."""
    EmployeeFactory(userid="viewer", roles=["enterprise_admin"])
    client.post("/login/", {"username": "viewer", "password": "pass-1234"})
    zh = client.get("/api/v1/nothing-here/", HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9")
    client.post("/i18n/setlang/", {"language": "en", "next": "/"})
    en = client.get("/api/v1/nothing-here/", HTTP_ACCEPT_LANGUAGE="zh-CN")
    assert zh.status_code == en.status_code == 404
    assert zh.json()["error"]["message"] != en.json()["error"]["message"]
    assert any("\u4e00" <= ch <= "\u9fff" for ch in zh.json()["error"]["message"])
    assert not any("\u4e00" <= ch <= "\u9fff" for ch in en.json()["error"]["message"])


def test_departed_employee_with_the_right_password_is_told_so(client):
    EmployeeFactory(userid="leaver", status=EmployeeStatus.DEPARTED)
    page = client.post("/login/", {"username": "leaver", "password": "pass-1234"})
    assert "该账号已离职，不能登录。" in page.content.decode()
    assert "_auth_user_id" not in client.session


def test_departed_employee_with_a_wrong_password_learns_nothing(client):
    EmployeeFactory(userid="leaver", status=EmployeeStatus.DEPARTED)
    page = client.post("/login/", {"username": "leaver", "password": "wrong-pass"})
    body = page.content.decode()
    assert "离职" not in body
    assert "errornote" in body


def test_seed_demo_prints_the_url_it_is_served_on(monkeypatch):
    from org.demo import print_logins

    monkeypatch.setitem(os.environ, "TAGPORTAL_URL", "http://10.0.0.5:9000")
    out = io.StringIO()
    print_logins(out)
    assert "http://10.0.0.5:9000/login/" in out.getvalue()


@pytest.mark.parametrize(
    ("call", "zh", "en"),
    [
        (lambda c: c.get("/api/v1/employees/?employee=nobody"), "未知员工“nobody”。", "Unknown employee 'nobody'."),
        (
            lambda c: c.get("/api/v1/nothing/"),
            "没有与“/api/v1/nothing/”匹配的 API 路径。",
            "No API route matches '/api/v1/nothing/'.",
        ),
    ],
)
def test_our_api_errors_are_chinese_by_default_and_english_on_request(key_api, call, zh, en):
    assert call(key_api).json()["error"]["message"] == zh
    key_api.credentials(HTTP_AUTHORIZATION=key_api._credentials["HTTP_AUTHORIZATION"], HTTP_ACCEPT_LANGUAGE="en")
    assert call(key_api).json()["error"]["message"] == en


def test_bad_key_and_read_only_key_messages_are_translated(api, read_only_api):
    api.credentials(HTTP_AUTHORIZATION="Bearer nope")
    assert api.get("/api/v1/employees/").json()["error"]["message"] == "API 密钥无效或已吊销。"
    api.credentials(HTTP_AUTHORIZATION="Bearer nope", HTTP_ACCEPT_LANGUAGE="en")
    assert api.get("/api/v1/employees/").json()["error"]["message"] == "Invalid or revoked API key."
    denied = read_only_api.post("/api/v1/departments/", {"name": "x"}, format="json")
    assert denied.status_code == 403
    assert denied.json()["error"]["message"] == "此 API 密钥是只读的。"


def test_departed_employee_cannot_act_message_is_chinese(key_api):
    EmployeeFactory(userid="leaver", status=EmployeeStatus.DEPARTED)
    response = key_api.get("/api/v1/employees/?employee=leaver")
    assert response.status_code == 403
    assert response.json()["error"]["message"] == "员工“leaver”已离职，不能再操作。"


@pytest.mark.parametrize("query", ["status=bogus", "role=bogus", "department=abc", "parent=abc"])
def test_bad_filter_values_answer_400_not_an_empty_page(key_api, query):
    path = "/api/v1/departments/" if query.startswith("parent") else "/api/v1/employees/"
    response = key_api.get(f"{path}?{query}")
    assert response.status_code == 400
    assert "bogus" in response.json()["error"]["message"] or "整数" in response.json()["error"]["message"]


def test_good_filter_values_still_filter(key_api):
    EmployeeFactory(userid="leaver", status=EmployeeStatus.DEPARTED)
    EmployeeFactory(userid="stayer")
    rows = key_api.get("/api/v1/employees/?status=departed").json()["results"]
    assert [r["userid"] for r in rows] == ["leaver"]


def test_english_admin_uses_proper_singular_and_plural_model_names(admin_user):
    from tests.conftest import login

    client = login(admin_user)
    client.cookies["django_language"] = "en"
    add_page = client.get("/tags/taggroup/add/").content.decode()
    assert "Add tag group" in add_page
    assert "Tag groups" in client.get("/tags/taggroup/").content.decode()
    assert "Add Tag groups" not in add_page


def test_english_counts_agree_with_their_number(admin_user):
    """"2 customers in all", "1 entry": a count's noun follows the count in English (the Chinese
    msgids are the same for one and many, the English forms are not)."""
    from django.urls import reverse

    from customers.models import Note
    from tests.conftest import login
    from tests.factories import CustomerFactory

    client = login(admin_user)
    client.cookies["django_language"] = "en"
    customer = CustomerFactory(followers=[admin_user])
    CustomerFactory()
    Note.objects.create(customer=customer, author=admin_user, text="called back")
    listed = client.get(reverse("admin:customers_customer_changelist")).content.decode()
    assert "2 customers in all" in listed and "2 customer in all" not in listed
    portrait = client.get(reverse("admin:customers_customer_change", args=[customer.pk])).content.decode()
    assert "1 entry<" in portrait and "1 entries" not in portrait


@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_language_switch_names_each_language_in_its_own_words(client, language):
    """An English reader on the Chinese login page looks for "English", not "英语"."""
    import re

    client.cookies["django_language"] = language
    page = client.get("/login/").content.decode()
    select = re.search(r'<select id="tp-language-select".*?</select>', page, re.S).group(0)
    assert re.findall(r"<option [^>]*>([^<]+)</option>", select) == ["简体中文", "English"]


def test_english_portrait_breadcrumb_capitalises_the_list_name(admin_user):
    """"Home › Customers › Customers › 客户", as on the list itself, not "… › customers › …"."""
    import re

    from django.urls import reverse

    from tests.conftest import login
    from tests.factories import CustomerFactory

    client = login(admin_user)
    client.cookies["django_language"] = "en"
    customer = CustomerFactory()
    page = client.get(reverse("admin:customers_customer_change", args=[customer.pk])).content.decode()
    crumbs = re.search(r'<div class="breadcrumbs">(.*?)</div>', page, re.S).group(1)
    assert re.findall(r">([^<]+)</a>", crumbs) == ["Home", "Customers", "Customers"]


@pytest.mark.parametrize("language, message", [
    ("zh-hans", "账号或密码不正确。注意两者都区分大小写。"),
    ("en", "The account or password is not correct. Note that both are case-sensitive."),
])
def test_a_wrong_password_is_told_in_plain_words(client, language, message):
    """Not Django's "请输入一个正确的工作人员账户 账号 和密码" (a staff account, the field's name
    dropped into the sentence with spaces around it)."""
    EmployeeFactory(userid="someone")
    client.cookies["django_language"] = language
    body = client.post("/login/", {"username": "someone", "password": "wrong-pass"}).content.decode()
    assert message in body and "工作人员" not in body and "staff account" not in body
