"""API.md "Channel codes" over real HTTP on PostgreSQL with the real worker: a CRM creates a code
and posts customers through its state; WeCom's add_external_contact events (retried, as WeCom does)
are processed on the worker and tag each customer once; the periodic refresh runs on the worker."""

from __future__ import annotations

import time

import httpx
import pytest
from django.db import connection

from channels.models import ChannelAdd, ChannelCode
from customers.models import Customer, TagEvent, Tagging
from tests.factories import make_api_client
from tests.wecom.conftest import post_event, wecom_fake  # noqa: F401

pytestmark = [pytest.mark.worker]


def wait_for(predicate, timeout: float, message: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(message)


@pytest.fixture
def http(live_server, transactional_db, world):
    _client, key = make_api_client("crm-http")
    with httpx.Client(base_url=f"{live_server.url}/api/v1", headers={"Authorization": f"Bearer {key}"},
                      timeout=30) as client:
        yield client


def test_api_over_http_with_the_worker(http, world, celery_worker):
    w = world
    r = http.post("/channel-codes/", json={"name": "车展", "state": "expo_http", "employees": ["zhangsan"],
                                           "tags": [w.vip.pk, w.key_account.pk, w.hot.pk], "daily_limit": 1,
                                           "backup_employees": ["lisi"]})
    assert r.status_code == 201, r.text
    code = r.json()
    assert http.post("/channel-codes/", json={"name": "重复", "state": "expo_http", "employees": ["zhangsan"]}
                     ).status_code == 409

    body = {"external_userid": "wmHTTP1", "name": "王先生",
            "followers": [{"employee": "zhangsan", "state": "expo_http"}]}
    assert http.post("/customers/", json=body).status_code == 201
    assert http.post("/customers/", json=body).status_code == 200  # the CRM syncs again: nothing more
    customer = http.get("/customers/?state=expo_http").json()["results"][0]
    assert set(customer["tags"]) == {w.vip.pk, w.key_account.pk, w.hot.pk}
    assert TagEvent.objects.filter(customer_id=customer["id"], source="channel").count() == 3

    detail = http.get(f"/channel-codes/{code['id']}/").json()
    assert detail["added_count"] == 1 and detail["added_today"] == 1
    receivers = http.get(f"/channel-codes/{code['id']}/receivers/").json()
    assert receivers["next"] == "lisi" and receivers["backup"] is True  # zhangsan reached the daily limit
    stats = http.get(f"/channel-codes/{code['id']}/stats/").json()
    assert sum(d["added"] for d in stats["days"]) == 1 and stats["employees"][0]["employee"] == "zhangsan"
    png = http.get(code["qr"]["png"], params={"size": 50})
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"

    # The periodic refresh runs on the worker: it finds the receivers as the add left them (no change).
    ChannelCode.objects.filter(pk=code["id"]).update(receivers=[])
    from channels.tasks import refresh_receivers

    refresh_receivers.delay()
    wait_for(lambda: ChannelCode.objects.get(pk=code["id"]).receivers == [w.team_staff.pk], 30,
             "the worker did not refresh the receivers")


def test_wecom_add_events_on_the_worker_tag_once_even_when_retried(world, wecom_fake, celery_worker):  # noqa: F811
    if connection.vendor != "postgresql":
        pytest.skip("the worker test runs on PostgreSQL")
    w = world
    from tests.channels.conftest import make_code

    code = make_code(name="直播间", state="live_wecom", employees=[w.staff], tags=[w.vip, w.key_account])
    for i in range(3):
        contact, follower, welcome = wecom_fake.state.add_contact(
            userid="zhangsan", external_userid=f"wmLIVE{i}", name=f"观众{i}", state="live_wecom")
        event = wecom_fake.add_contact_event(contact, follower, welcome)
        assert post_event(wecom_fake, event).status_code == 200
        assert post_event(wecom_fake, event).status_code == 200  # WeCom retries an unanswered delivery
    wait_for(lambda: ChannelAdd.objects.filter(code=code).count() == 3, 60, "the worker did not add the customers")
    time.sleep(1)  # the retried deliveries had their chance too
    assert ChannelAdd.objects.filter(code=code).count() == 3
    for i in range(3):
        customer = Customer.objects.get(external_userid=f"wmLIVE{i}")
        assert set(Tagging.objects.filter(customer=customer).values_list("tag_id", flat=True)) == {
            w.vip.pk, w.key_account.pk}
        assert TagEvent.objects.filter(customer=customer, source="channel").count() == 2
