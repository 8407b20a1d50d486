"""The callback WeCom calls (`/wecom/callback/`): URL check and events. Thin: verify, decrypt,
hand the XML to `wecom_event_receive`, answer `success` at once (processing is on a worker).

No login and no CSRF token: WeCom signs every request instead (msg_signature over our Token).
Failures answer plain text and store nothing: 400 malformed, 403 bad signature or another corp's
receive id, 404 when the portal is not connected to WeCom, 405 other methods, 413 over 64 KB.
"""

from __future__ import annotations

import logging

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from . import conf
from .crypto import CryptoError, ReceiveIdError, SignatureError
from .events import EventParseError, parse_xml
from .services import wecom_event_receive

logger = logging.getLogger(__name__)

MAX_BODY = 64 * 1024
CALLBACK_PARAMS = ("msg_signature", "timestamp", "nonce")


def _plain(text: str, status: int = 200) -> HttpResponse:
    return HttpResponse(text, status=status, content_type="text/plain; charset=utf-8")


def _refuse(status: int, reason: str, request: HttpRequest) -> HttpResponse:
    logger.warning("WeCom callback refused (%s): %s from %s", status, reason, request.META.get("REMOTE_ADDR", "?"))
    return _plain(reason, status)


def _params(request: HttpRequest, names: tuple[str, ...]) -> dict[str, str] | None:
    values = {name: request.GET.get(name, "") for name in names}
    if not all(values.values()) or any(len(v) > 1024 for v in values.values()):
        return None
    return values


def _crypto_status(exc: CryptoError) -> int:
    return 403 if isinstance(exc, SignatureError | ReceiveIdError) else 400


@csrf_exempt
def callback(request: HttpRequest) -> HttpResponse:
    crypto = conf.crypto()
    if crypto is None:
        return _plain("WeCom is not configured", 404)
    if request.method == "GET":
        return _url_check(request, crypto)
    if request.method == "POST":
        return _event(request, crypto)
    response = _plain("method not allowed", 405)
    response["Allow"] = "GET, POST"
    return response


def _url_check(request: HttpRequest, crypto) -> HttpResponse:
    params = _params(request, (*CALLBACK_PARAMS, "echostr"))
    if params is None:
        return _refuse(400, "missing_parameters", request)
    try:
        echo = crypto.verify_url(params["msg_signature"], params["timestamp"], params["nonce"], params["echostr"])
    except CryptoError as exc:
        return _refuse(_crypto_status(exc), exc.reason, request)
    except UnicodeDecodeError:
        return _refuse(400, "not_utf8", request)
    return _plain(echo)


def _read_body(request: HttpRequest) -> bytes | None:
    """The body, or None when it is over MAX_BODY (announced or actual)."""
    try:
        announced = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        announced = 0
    if announced > MAX_BODY:
        return None
    body = request.read(MAX_BODY + 1)
    return None if len(body) > MAX_BODY else body


def _event(request: HttpRequest, crypto) -> HttpResponse:
    params = _params(request, CALLBACK_PARAMS)
    if params is None:
        return _refuse(400, "missing_parameters", request)
    body = _read_body(request)
    if body is None:
        return _refuse(413, "body_too_large", request)
    try:
        envelope = parse_xml(body)
    except EventParseError as exc:
        return _refuse(400, exc.reason, request)
    encrypt = envelope.get("Encrypt")
    if not isinstance(encrypt, str) or not encrypt:
        return _refuse(400, "no_encrypt", request)
    try:
        xml = crypto.decrypt_message(params["msg_signature"], params["timestamp"], params["nonce"], encrypt)
    except CryptoError as exc:
        return _refuse(_crypto_status(exc), exc.reason, request)
    try:
        event, created = wecom_event_receive(xml=xml)
    except EventParseError as exc:
        return _refuse(400, exc.reason, request)
    if not created:
        logger.info("WeCom callback: event %s delivered again, already stored", event.pk)
    return _plain("success")
