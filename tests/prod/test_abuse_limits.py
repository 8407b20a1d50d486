"""Abuse limits: API rate limits per API client and per acting employee (429 in the API error shape
with Retry-After), request body limits (bulk calls excepted up to their maximum), login lockout per
account and address with a Chinese message and an admin's unlock (django-axes)."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from tests.conftest import as_employee, bearer_client, login
from tests.customers.world import world_fixture  # noqa: F401
from tests.factories import make_api_client

pytestmark = pytest.mark.django_db


# ---------------------------------------------------------------- API rate limits


def test_an_api_client_over_the_rate_gets_429_with_retry_after(world, settings):
    settings.API_THROTTLE_RATE = "3/min"
    crm = bearer_client(world.key)
    for _ in range(3):
        assert crm.get("/api/v1/tags/").status_code == 200
    response = crm.get("/api/v1/tags/")
    assert response.status_code == 429
    assert 0 < int(response["Retry-After"]) <= 60
    error = response.json()["error"]
    assert error["code"] == "throttled" and "请求过于频繁" in error["message"]
    assert error["details"]["retry_after"] == int(response["Retry-After"])
    # another client has its own count
    assert bearer_client(make_api_client("bi")[1]).get("/api/v1/tags/").status_code == 200


def test_an_acting_employee_is_limited_across_api_clients(world, settings):
    settings.API_THROTTLE_RATE = "3/min"
    crm, bi = bearer_client(world.key), bearer_client(make_api_client("bi")[1])
    assert crm.get("/api/v1/customers/", {"employee": "zhangsan"}).status_code == 200
    assert bi.get("/api/v1/customers/", {"employee": "zhangsan"}).status_code == 200
    assert bi.post(f"/api/v1/customers/{world.c_staff.pk}/notes/", {"employee": "zhangsan", "text": "回访"},
                   format="json").status_code == 201  # named in the body counts too
    response = crm.get("/api/v1/customers/", {"employee": "zhangsan"})
    assert response.status_code == 429 and response.json()["error"]["code"] == "throttled"
    assert crm.get("/api/v1/customers/", {"employee": "lisi"}).status_code == 200  # someone else: fine


def test_a_browser_session_is_limited_per_employee(world, settings):
    settings.API_THROTTLE_RATE = "2/min"
    session = as_employee(world.staff)
    assert [session.get("/api/v1/tags/").status_code for _ in range(3)] == [200, 200, 429]
    assert as_employee(world.team_staff).get("/api/v1/tags/").status_code == 200


def test_the_default_rate_is_600_a_minute(settings):
    from tagportal.api.throttling import ApiClientRateThrottle

    assert settings.API_THROTTLE_RATE == "600/min"
    assert ApiClientRateThrottle().parse_rate(settings.API_THROTTLE_RATE) == (600, 60)


# ---------------------------------------------------------------- request body limits


def test_a_body_over_the_limit_is_413_in_the_api_error_shape_before_it_is_read(world):
    crm = bearer_client(world.key)
    body = json.dumps({"external_userid": "wmBIG", "name": "x" * (1024 * 1024 + 10)})
    response = crm.post("/api/v1/customers/", body, content_type="application/json")
    assert response.status_code == 413
    error = response.json()["error"]
    assert error["code"] == "too_large" and error["details"]["max_bytes"] == 1024 * 1024


def test_bulk_tagging_takes_10000_operations_beyond_the_ordinary_limit(world, settings):
    operations = [{"external_userid": f"wm-not-there-{i:06d}-" + "p" * 80, "add": [world.vip.pk]}
                  for i in range(10_000)]
    body = json.dumps({"operations": operations})
    assert len(body) > settings.REQUEST_BODY_MAX_SIZE
    response = bearer_client(world.key).post("/api/v1/tagging/bulk/", body, content_type="application/json")
    assert response.status_code == 400, response.content[:300]  # read and validated: unknown customers
    assert response.json()["error"]["code"] == "invalid_items"
    assert len(response.json()["error"]["details"]) == 10_000


def test_a_bulk_body_over_the_bulk_limit_is_413(world, settings):
    settings.BULK_REQUEST_MAX_SIZE = 2 * 1024 * 1024  # read per request
    from customers.api.jobs import BulkTaggingView

    saved = BulkTaggingView.max_body_size
    BulkTaggingView.max_body_size = settings.BULK_REQUEST_MAX_SIZE
    try:
        body = json.dumps({"operations": [{"customer": 1, "add": [1], "pad": "x" * 300}] * 8000})
        response = bearer_client(world.key).post("/api/v1/tagging/bulk/", body, content_type="application/json")
    finally:
        BulkTaggingView.max_body_size = saved
    assert response.status_code == 413 and response.json()["error"]["code"] == "too_large"


def test_a_large_form_post_to_a_page_is_413(world):
    response = login(world.admin).post("/org/department/add/", {"name": "x" * (1024 * 1024 + 1)})
    assert response.status_code == 413


# ---------------------------------------------------------------- login lockout (django-axes)


def _try_login(userid, password, ip="10.0.0.1"):
    client = Client(REMOTE_ADDR=ip)
    response = client.post("/login/", {"username": userid, "password": password, "next": "/"})
    return client, response


def test_repeated_failures_lock_the_account_at_that_address_with_a_chinese_message(world, settings):
    assert settings.AXES_FAILURE_LIMIT == 5
    for _ in range(4):
        _client, response = _try_login("zhangsan", "wrong")
        assert response.status_code == 200  # the ordinary "wrong password" form
    _client, response = _try_login("zhangsan", "wrong")
    assert response.status_code == 429
    page = response.content.decode()
    assert "登录失败次数过多" in page and "zhangsan" in page and "30 分钟" in page
    assert 'name="password"' in page  # still the login page, not a bare text

    client, response = _try_login("zhangsan", "pass-1234")  # even the right password: locked
    assert response.status_code == 429 and "_auth_user_id" not in client.session
    client, response = _try_login("zhangsan", "pass-1234", ip="10.0.0.2")  # another address: fine
    assert response.status_code == 302 and "_auth_user_id" in client.session
    client, response = _try_login("lisi", "pass-1234")  # another account from that address: fine
    assert response.status_code == 302


def test_an_enterprise_admin_unlocks_the_account_in_the_portal(world):
    for _ in range(5):
        _try_login("zhangsan", "wrong")
    assert _try_login("zhangsan", "pass-1234")[1].status_code == 429

    assert login(world.staff).get("/login-lockouts/").status_code == 403
    admin = login(world.admin)
    page = admin.get("/login-lockouts/")
    assert page.status_code == 200
    assert "zhangsan" in page.content.decode() and "10.0.0.1" in page.content.decode()
    from axes.models import AccessAttempt

    attempt = AccessAttempt.objects.get(username="zhangsan")
    response = admin.post("/login-lockouts/", {"attempt": attempt.pk}, follow=True)
    assert "已解锁账号“zhangsan”" in response.content.decode()
    client, response = _try_login("zhangsan", "pass-1234")
    assert response.status_code == 302 and "_auth_user_id" in client.session


def test_the_lockout_page_is_on_the_admins_front_page(world):
    assert "/login-lockouts/" in login(world.admin).get("/").content.decode()
    assert "/login-lockouts/" not in login(world.staff).get("/").content.decode()


def test_a_success_resets_the_count_and_many_logins_are_fine(world):
    for _ in range(3):
        for _ in range(4):
            _try_login("zhangsan", "wrong")
        client, response = _try_login("zhangsan", "pass-1234")
        assert response.status_code == 302  # 4 failures then a success, three times over


def test_api_keys_are_not_subject_to_the_login_lockout(world):
    for _ in range(6):
        _try_login("zhangsan", "wrong", ip="127.0.0.1")
    response = bearer_client(world.key).get("/api/v1/customers/", {"employee": "zhangsan"},
                                            REMOTE_ADDR="127.0.0.1")
    assert response.status_code == 200


def test_message_ingestion_takes_10000_messages_beyond_the_ordinary_limit(world, settings):
    messages = [{"msgid": f"big-{i}", "external_userid": "wm-nobody", "employee": "zhangsan", "direction": "in",
                 "content": "想了解一下价格" * 10, "sent_at": "2026-11-20T10:00:00+08:00"} for i in range(10_000)]
    body = json.dumps({"messages": messages})
    assert len(body) > settings.REQUEST_BODY_MAX_SIZE
    response = bearer_client(world.key).post("/api/v1/messages/", body, content_type="application/json")
    assert response.status_code != 413, response.content[:300]
    assert response.status_code < 500
