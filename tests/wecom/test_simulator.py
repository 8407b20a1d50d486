"""The WeCom stand-in answers like WeCom: tokens, missing parameters, limits, welcome codes, and it
delivers correctly encrypted callbacks to a running portal over real HTTP."""

from __future__ import annotations

import time

import httpx
import pytest

from wecom.models import WeComEvent
from wecom.simulator import WeComSimulator, registry, route
from wecom.simulator.registry import known_paths


@pytest.fixture
def sim():
    with WeComSimulator() as simulator:
        yield simulator


def call(sim, method: str, path: str, *, token: str | None = None, params=None, json=None) -> dict:
    params = dict(params or {})
    if token is not None:
        params["access_token"] = token
    response = httpx.request(method, f"{sim.api_base}/{path}", params=params, json=json, timeout=5)
    assert response.status_code == 200
    return response.json()


def token(sim) -> str:
    return call(sim, "GET", "gettoken", params={"corpid": sim.state.corp_id, "corpsecret": sim.state.secret})[
        "access_token"]


def test_gettoken_errcodes(sim):
    assert call(sim, "GET", "gettoken", params={"corpsecret": "x"})["errcode"] == 41002
    assert call(sim, "GET", "gettoken", params={"corpid": sim.state.corp_id})["errcode"] == 41004
    assert call(sim, "GET", "gettoken", params={"corpid": "other", "corpsecret": "x"})["errcode"] == 40013
    assert call(sim, "GET", "gettoken", params={"corpid": sim.state.corp_id, "corpsecret": "x"})["errcode"] == 40001
    answer = call(sim, "GET", "gettoken", params={"corpid": sim.state.corp_id, "corpsecret": sim.state.secret})
    assert answer["errcode"] == 0 and answer["expires_in"] == 7200 and answer["access_token"]


def test_every_route_checks_the_access_token(sim):
    assert call(sim, "GET", "externalcontact/get", params={"external_userid": "x"})["errcode"] == 41001
    assert call(sim, "GET", "externalcontact/get", token="forged", params={"external_userid": "x"})["errcode"] == 40014
    good = token(sim)
    sim.expire_tokens()
    assert call(sim, "GET", "externalcontact/get", token=good, params={"external_userid": "x"})["errcode"] == 42001


def test_call_log_records_every_request_without_the_token(sim):
    good = token(sim)
    call(sim, "GET", "externalcontact/get", token=good, params={"external_userid": "wmX"})
    calls = sim.calls()
    assert [c.path for c in calls] == ["gettoken", "externalcontact/get"]
    assert calls[1].params == {"external_userid": "wmX"} and calls[1].errcode == 84061
    assert all("access_token" not in c.params and "corpsecret" not in c.params for c in calls)


def test_externalcontact_get_pages_followers_beyond_500(sim):
    for i in range(501):
        sim.state.add_contact(userid=f"u{i:03d}", external_userid="wmBIG", welcome_code=False)
    good = token(sim)
    first = call(sim, "GET", "externalcontact/get", token=good, params={"external_userid": "wmBIG"})
    assert len(first["follow_user"]) == 500 and first["next_cursor"]
    second = call(sim, "GET", "externalcontact/get", token=good,
                  params={"external_userid": "wmBIG", "cursor": first["next_cursor"]})
    assert [f["userid"] for f in second["follow_user"]] == ["u500"] and second["next_cursor"] == ""


def test_batch_get_by_user_limits_and_cursor(sim):
    for i in range(3):
        sim.state.add_contact(userid="zhangwei", external_userid=f"wm{i}", welcome_code=False)
    good = token(sim)
    body = {"userid_list": ["zhangwei"], "limit": 2}
    first = call(sim, "POST", "externalcontact/batch/get_by_user", token=good, json=body)
    assert len(first["external_contact_list"]) == 2 and first["next_cursor"]
    rest = call(sim, "POST", "externalcontact/batch/get_by_user", token=good,
                json={**body, "cursor": first["next_cursor"]})
    assert len(rest["external_contact_list"]) == 1 and rest["next_cursor"] == ""
    assert call(sim, "POST", "externalcontact/batch/get_by_user", token=good,
                json={"userid_list": [f"u{i}" for i in range(101)]})["errcode"] == 40058
    assert call(sim, "POST", "externalcontact/batch/get_by_user", token=good,
                json={"userid_list": ["zhangwei"], "limit": 101})["errcode"] == 40058
    assert call(sim, "POST", "externalcontact/batch/get_by_user", token=good,
                json={"userid_list": ["nobody"]})["errcode"] == 60111
    assert call(sim, "POST", "externalcontact/batch/get_by_user", token=good, json={})["errcode"] == 41000


def test_welcome_code_once_and_within_20_seconds(sim):
    _c, _f, code = sim.state.add_contact(userid="zhangwei", external_userid="wmW")
    good = token(sim)
    body = {"welcome_code": code, "text": {"content": "您好"}}
    assert call(sim, "POST", "externalcontact/send_welcome_msg", token=good, json=body)["errcode"] == 0
    assert call(sim, "POST", "externalcontact/send_welcome_msg", token=good, json=body)["errcode"] == 41051
    _c, _f, late = sim.state.add_contact(userid="zhangwei", external_userid="wmLate")
    sim.state.welcome_codes[late]["issued_at"] = time.time() - 21
    assert call(sim, "POST", "externalcontact/send_welcome_msg", token=good,
                json={**body, "welcome_code": late})["errcode"] != 0
    assert len(sim.state.welcome_messages) == 1


def test_wrong_method_bad_json_unknown_path(sim):
    good = token(sim)
    assert call(sim, "GET", "externalcontact/send_welcome_msg", token=good)["errcode"] == 43002
    response = httpx.post(f"{sim.api_base}/externalcontact/send_welcome_msg", params={"access_token": good},
                          content=b"{not json", timeout=5)
    assert response.json()["errcode"] == 47001
    assert httpx.get(f"{sim.api_base}/no/such/api", timeout=5).status_code == 404


def test_injected_failures_then_normal_answers(sim):
    good = token(sim)
    sim.fail("externalcontact/get", 45009, times=2)
    codes = [call(sim, "GET", "externalcontact/get", token=good, params={"external_userid": "x"})["errcode"]
             for _ in range(3)]
    assert codes == [45009, 45009, 84061]


def test_other_modules_register_routes(sim):
    @route("POST", "test/echo")
    def echo(simulator, req):
        return {"got": req.require("value")}

    try:
        good = token(sim)
        assert call(sim, "POST", "test/echo", token=good, json={"value": 7}) == {"errcode": 0, "errmsg": "ok",
                                                                                  "got": 7}
        assert call(sim, "POST", "test/echo", token=good, json={})["errcode"] == 41000
        assert "POST test/echo" in known_paths()
    finally:
        registry._routes.pop(("POST", "test/echo"), None)


@pytest.mark.django_db(transaction=True)
def test_sends_encrypted_events_to_a_running_portal(wecom_fake, live_server, settings):
    settings.WECOM_EVENT_RETRY_SECONDS = 3600
    response = wecom_fake.send_event(f"{live_server.url}/wecom/callback/",
                                     {"Event": "some_future_event", "Id": "1"})
    assert (response.status_code, response.text) == (200, "success")
    assert WeComEvent.objects.get().payload["Id"] == "1"
    other = WeComSimulator(corp_id="wwanothercorp")  # same Token and key, another corp
    response = other.send_event(f"{live_server.url}/wecom/callback/", {"Event": "x"})
    assert response.status_code == 403
    assert WeComEvent.objects.count() == 1
