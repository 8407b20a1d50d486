"""/wecom/callback/: WeCom's URL check, events stored once and answered `success`, and malformed
or hostile callbacks refused with a 4xx while nothing is stored."""

from __future__ import annotations

import base64

import pytest
from django.test import Client

from tests.wecom.conftest import CALLBACK, post_event
from wecom.crypto import WeComCrypto
from wecom.models import EventStatus, WeComEvent

pytestmark = pytest.mark.django_db(transaction=False)

TAG_EVENT = {"Event": "change_external_tag", "Id": "etTAG1", "TagType": "tag", "ChangeType": "create",
             "CreateTime": 1700000000}


def query(params: dict) -> str:
    from urllib.parse import urlencode

    return urlencode(params)


def post_raw(sim, envelope: str | bytes, params: dict, content_type="text/xml"):
    return Client().post(f"{CALLBACK}?{query(params)}", data=envelope, content_type=content_type)


def signed_encrypt(sim, encrypt: str) -> tuple[dict, str]:
    """An envelope around any Encrypt text, correctly signed (so only the inside is wrong)."""
    params = {"timestamp": "1700000000", "nonce": "77"}
    params["msg_signature"] = sim.crypto.signature(params["timestamp"], params["nonce"], encrypt)
    envelope = (f"<xml><ToUserName><![CDATA[{sim.state.corp_id}]]></ToUserName>"
                f"<Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>")
    return params, envelope


# ---------------------------------------------------------------- the URL check


def test_url_check_answers_the_plain_echostr(wecom_fake):
    echostr = wecom_fake.crypto.encrypt("1616140317555161061")
    params = {"timestamp": "1409659589", "nonce": "263014780", "echostr": echostr,
              "msg_signature": wecom_fake.crypto.signature("1409659589", "263014780", echostr)}
    response = Client().get(CALLBACK, params)
    assert response.status_code == 200
    assert response.content == b"1616140317555161061"  # no quotes, BOM or newline


def test_url_check_with_the_published_sample(settings):
    settings.WECOM_CORP_ID = "wx5823bf96d3bd56c7"
    settings.WECOM_TOKEN = "QDG6eK"
    settings.WECOM_AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
    echostr = "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ=="
    # WeCom sends the parameters URL-encoded: '+' and '/' and '=' survive the decoding.
    url = (f"{CALLBACK}?msg_signature=5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3&timestamp=1409659589"
           f"&nonce=263014780&echostr={query({'e': echostr})[2:]}")
    response = Client().get(url)
    assert response.status_code == 200 and response.content == b"1616140317555161061"


def test_url_check_bad_signature_is_403(wecom_fake):
    echostr = wecom_fake.crypto.encrypt("123")
    response = Client().get(CALLBACK, {"timestamp": "1", "nonce": "2", "echostr": echostr, "msg_signature": "0" * 40})
    assert response.status_code == 403


def test_not_configured_is_404(settings):
    settings.WECOM_CORP_ID = settings.WECOM_TOKEN = settings.WECOM_AES_KEY = ""
    assert Client().get(CALLBACK, {"echostr": "x"}).status_code == 404
    assert Client().post(CALLBACK, data="<xml/>", content_type="text/xml").status_code == 404


# ---------------------------------------------------------------- events


def test_event_is_stored_and_answered_success(wecom_fake, settings):
    settings.WECOM_EVENT_RETRY_SECONDS = 3600
    response = post_event(wecom_fake, TAG_EVENT)
    assert response.status_code == 200 and response.content == b"success"
    event = WeComEvent.objects.get()
    assert (event.event, event.change_type, event.payload["Id"]) == ("change_external_tag", "create", "etTAG1")
    assert "<Id><![CDATA[etTAG1]]></Id>" in event.raw


def test_a_retry_of_the_same_event_is_stored_once(wecom_fake):
    xml = wecom_fake.event_xml(TAG_EVENT)
    assert post_event(wecom_fake, xml).content == b"success"
    assert post_event(wecom_fake, xml).content == b"success"  # encrypted anew, same content
    assert WeComEvent.objects.count() == 1


def test_distinct_tag_events_sharing_a_create_time_are_all_kept(wecom_fake):
    """客户标签 events carry no MsgId; creating a group with three tags fires three events that can
    share a CreateTime: a dedupe key on (Event, CreateTime) would drop two."""
    for tag_id in ("etA", "etB", "etC"):
        post_event(wecom_fake, {**TAG_EVENT, "Id": tag_id})
    post_event(wecom_fake, {**TAG_EVENT, "Id": "egGROUP", "TagType": "tag_group"})
    assert sorted(WeComEvent.objects.values_list("payload__Id", flat=True)) == ["egGROUP", "etA", "etB", "etC"]


def test_method_not_allowed(wecom_fake):
    assert Client().put(CALLBACK).status_code == 405


# ---------------------------------------------------------------- malformed and hostile: 4xx, nothing stored

BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<xml><Event>&lol3;</Event></xml>"""
XXE = """<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<xml><ToUserName>x</ToUserName><Encrypt>&xxe;</Encrypt></xml>"""


def _hostile_cases(sim) -> dict[str, tuple]:
    good_params, good_envelope = sim.signed_post(sim.event_xml(TAG_EVENT))
    crypto: WeComCrypto = sim.crypto
    other_corp = crypto.encrypt(sim.event_xml(TAG_EVENT), receive_id="wwsomeoneelse")
    raw = base64.b64decode(crypto.encrypt(sim.event_xml(TAG_EVENT)))
    truncated = base64.b64encode(raw[:-16]).decode()
    bad_padding = _encrypt_raw(crypto, b"R" * 16 + b"\x00\x00\x00\x01" + b"x" + b"\x00" * 11)
    return {
        "bad signature": (403, {**good_params, "msg_signature": "f" * 40}, good_envelope),
        "signature of another nonce": (403, {**good_params, "nonce": good_params["nonce"] + "1"}, good_envelope),
        "missing msg_signature": (400, {k: v for k, v in good_params.items() if k != "msg_signature"}, good_envelope),
        "another corp's receive id": (403, *signed_encrypt(sim, other_corp)),
        "body over 64 KB": (413, good_params, good_envelope.replace("<xml>", "<xml><Pad>" + "x" * 70_000 + "</Pad>")),
        "not XML": (400, good_params, "this is not xml"),
        "entity expansion outside": (400, good_params, BILLION_LAUGHS),
        "external entity outside": (400, good_params, XXE),
        "no Encrypt element": (400, good_params, "<xml><ToUserName>x</ToUserName></xml>"),
        "Encrypt not base64": (400, *signed_encrypt(sim, "%%%not-base64%%%")),
        "truncated ciphertext": (400, *signed_encrypt(sim, truncated)),
        "bad padding": (400, *signed_encrypt(sim, bad_padding)),
        "entity expansion inside the encrypted event": (400, *signed_encrypt(sim, crypto.encrypt(BILLION_LAUGHS))),
        "external entity inside the encrypted event": (
            400, *signed_encrypt(sim, crypto.encrypt(XXE.replace("&xxe;", "x").replace(
                "<Encrypt>x</Encrypt>", "<Event>&xxe;</Event>")))),
        "decrypted text is not XML": (400, *signed_encrypt(sim, crypto.encrypt("hello"))),
        "event without Event": (400, *signed_encrypt(sim, crypto.encrypt("<xml><ChangeType>x</ChangeType></xml>"))),
        "root is not <xml>": (400, *signed_encrypt(sim, crypto.encrypt("<evil><Event>x</Event></evil>"))),
        "not UTF-8 inside": (400, *signed_encrypt(sim, crypto.encrypt(b"<xml><Event>\xff\xfe</Event></xml>"))),
    }


def _encrypt_raw(crypto, plain: bytes) -> str:
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    encryptor = Cipher(algorithms.AES(crypto.key), modes.CBC(crypto.iv)).encryptor()
    return base64.b64encode(encryptor.update(plain) + encryptor.finalize()).decode()


CASES = [
    "bad signature", "signature of another nonce", "missing msg_signature", "another corp's receive id",
    "body over 64 KB", "not XML", "entity expansion outside", "external entity outside", "no Encrypt element",
    "Encrypt not base64", "truncated ciphertext", "bad padding", "entity expansion inside the encrypted event",
    "external entity inside the encrypted event", "decrypted text is not XML", "event without Event",
    "root is not <xml>", "not UTF-8 inside",
]


@pytest.mark.parametrize("case", CASES)
def test_hostile_callback_is_refused_and_nothing_stored(wecom_fake, case):
    status, params, envelope = _hostile_cases(wecom_fake)[case]
    response = post_raw(wecom_fake, envelope, params)
    assert response.status_code == status, response.content
    assert 400 <= response.status_code < 500
    assert response.content != b"success"
    assert WeComEvent.objects.count() == 0


def test_announced_body_over_64_kb_is_refused_unread(wecom_fake):
    params, envelope = wecom_fake.signed_post(wecom_fake.event_xml(TAG_EVENT))
    response = Client().generic("POST", f"{CALLBACK}?{query(params)}", envelope, content_type="text/xml",
                                CONTENT_LENGTH=str(10**7))
    assert response.status_code == 413
    assert WeComEvent.objects.count() == 0


def test_no_login_and_no_csrf_token_needed(wecom_fake):
    client = Client(enforce_csrf_checks=True)
    assert post_event(wecom_fake, TAG_EVENT, client=client).content == b"success"
    assert WeComEvent.objects.filter(status__in=[EventStatus.IGNORED, EventStatus.PENDING, EventStatus.DONE,
                                                 EventStatus.FAILED]).count() == 1


@pytest.mark.parametrize(
    ("case", "status"),
    [("another corp's echostr", 403), ("echostr not base64", 400), ("missing nonce", 400),
     ("truncated echostr", 400)],
)
def test_bad_url_checks(wecom_fake, case, status):
    crypto = wecom_fake.crypto
    echostr = {
        "another corp's echostr": crypto.encrypt("123", receive_id="wwsomeoneelse"),
        "echostr not base64": "%%%",
        "missing nonce": crypto.encrypt("123"),
        "truncated echostr": base64.b64encode(base64.b64decode(crypto.encrypt("123"))[:-16]).decode(),
    }[case]
    params = {"timestamp": "1", "nonce": "2", "echostr": echostr,
              "msg_signature": crypto.signature("1", "2", echostr)}
    if case == "missing nonce":
        params.pop("nonce")
    response = Client().get(CALLBACK, params)
    assert response.status_code == status
    assert response.content != b"123"
