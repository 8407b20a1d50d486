"""A WeCom stand-in over real HTTP (ThreadingHTTPServer on a local port), for tests and demos.

    sim = WeComSimulator().start()       # http://127.0.0.1:<free port>/cgi-bin/...
    sim.api_base                         # point WECOM_API_BASE here
    contact, follower, code = sim.state.add_contact(userid="zhangwei", state="expo2026")
    sim.send_event(portal_callback_url, sim.add_contact_event(contact, follower, code))
    sim.stop()

API routes (`/cgi-bin/<path>`) come from the registry (`routes_*` modules); every request but
`gettoken` needs a valid access_token (41001 missing, 40014 invalid, 42001 expired), exactly as
WeCom answers. `fail(path, errcode, times)` injects WeCom errors (-1 busy, 45009 rate limit,
42001 expired token ...) for the next calls of a path. Control routes (`/sim/<action>`, JSON)
let the `wecom_simulate` command drive a running simulator: add a customer and send the event.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx

from wecom.crypto import WeComCrypto

from . import registry
from .registry import SimError, SimRequest
from .state import Call, ExternalContact, FollowUser, SimState, now

logger = logging.getLogger(__name__)

# The demo corp's settings: `wecom_simulate serve` prints them for the portal's environment.
DEMO_CORP_ID = "wwsimulated0corp"
DEMO_SECRET = "sim-secret-not-for-production"
DEMO_TOKEN = "simToken2026"
DEMO_AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
DEMO_AGENT_ID = "1000002"
MAX_BODY = 1 << 20


class _Handler(BaseHTTPRequestHandler):
    server_version = "WeComSimulator/1.0"
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - BaseHTTPRequestHandler's name
        pass  # quiet: request lines would carry the access token

    def _send(self, status: int, data: dict) -> None:
        body = json.dumps(data, ensure_ascii=False).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(min(length, MAX_BODY)) if length > 0 else b""

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._handle("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._handle("POST")

    def _handle(self, method: str) -> None:
        sim: WeComSimulator = self.server.sim  # type: ignore[attr-defined]
        parts = urlsplit(self.path)
        params = dict(parse_qsl(parts.query, keep_blank_values=True))
        raw = self._read_body() if method == "POST" else b""
        if parts.path.startswith("/sim/"):
            status, data = sim.control(method, parts.path[len("/sim/"):], raw)
        else:
            status, data = sim.dispatch(method, parts.path, params, raw)
        self._send(status, data)


class WeComSimulator:
    """The stand-in server and its state. `latency` (seconds) delays each API answer."""

    def __init__(
        self,
        *,
        corp_id: str = DEMO_CORP_ID,
        secret: str = DEMO_SECRET,
        token: str = DEMO_TOKEN,
        aes_key: str = DEMO_AES_KEY,
        agent_id: str = DEMO_AGENT_ID,
        host: str = "127.0.0.1",
        port: int = 0,
        latency: float = 0.0,
        token_ttl: int = 7200,
    ):
        registry.autodiscover()
        self.state = SimState(corp_id=corp_id, secret=secret, token=token, aes_key=aes_key, agent_id=agent_id)
        self.host, self.port = host, port
        self.latency = latency
        self.token_ttl = token_ttl
        self.callback_url = ""  # where control actions send events (the portal's /wecom/callback/)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.crypto = WeComCrypto(token=token, encoding_aes_key=aes_key, receive_id=corp_id)

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> WeComSimulator:
        self._server = ThreadingHTTPServer((self.host, self.port), _Handler)
        self._server.daemon_threads = True
        self._server.sim = self  # type: ignore[attr-defined]
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="wecom-simulator", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._server = ThreadingHTTPServer((self.host, self.port), _Handler)
        self._server.sim = self  # type: ignore[attr-defined]
        self.port = self._server.server_address[1]
        self._server.serve_forever()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def __enter__(self) -> WeComSimulator:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def api_base(self) -> str:
        return f"{self.url}/cgi-bin"

    def settings(self) -> dict[str, str]:
        """The portal settings that connect it to this simulator."""
        s = self.state
        return {
            "WECOM_CORP_ID": s.corp_id,
            "WECOM_SECRET": s.secret,
            "WECOM_TOKEN": s.token,
            "WECOM_AES_KEY": s.aes_key,
            "WECOM_AGENT_ID": s.agent_id,
            "WECOM_API_BASE": self.api_base,
        }

    # ---------------------------------------------------------------- test controls

    def fail(self, path: str, errcode: int, times: int = 1) -> None:
        """The next `times` calls of `path` answer `errcode` (after the token check)."""
        with self.state.lock:
            self.state.failures.append([path.strip("/"), errcode, times])

    def expire_tokens(self) -> None:
        with self.state.lock:
            for token in self.state.tokens:
                self.state.tokens[token] = 0

    def calls(self, path: str | None = None) -> list[Call]:
        with self.state.lock:
            return [c for c in self.state.calls if path is None or c.path == path.strip("/")]

    def clear_calls(self) -> None:
        with self.state.lock:
            self.state.calls.clear()

    # ---------------------------------------------------------------- API dispatch

    def dispatch(self, method: str, path: str, params: dict[str, str], raw: bytes) -> tuple[int, dict]:
        if self.latency:
            time.sleep(self.latency)
        if not path.startswith("/cgi-bin/"):
            return 404, {"errcode": 404, "errmsg": "not found"}
        api_path = path[len("/cgi-bin/"):].strip("/")
        body: dict = {}
        if method == "POST" and raw:
            try:
                body = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, ValueError):
                body = None  # type: ignore[assignment]
        public_params = {k: v for k, v in params.items() if k not in ("access_token", "corpsecret")}
        with self.state.lock:
            errcode, data = self._answer(method, api_path, params, body)
            self.state.calls.append(
                Call(method=method, path=api_path, params=public_params,
                     body=body if isinstance(body, dict) else {}, errcode=errcode)
            )
        return (404 if errcode == 404 else 200), data

    def _answer(self, method: str, path: str, params: dict[str, str], body: Any) -> tuple[int, dict]:
        handler = registry.lookup(method, path)
        if handler is None:
            other = "POST" if method == "GET" else "GET"
            if registry.lookup(other, path):  # 43001 需要GET请求, 43002 需要POST请求
                errcode = 43002 if other == "POST" else 43001
                return errcode, {"errcode": errcode, "errmsg": f"require {other} method"}
            return 404, {"errcode": 404, "errmsg": f"unknown api {path}"}
        try:
            if path != "gettoken":
                self._check_token(params.get("access_token"))
            if body is None:
                raise SimError(47001, "data format error")
            for failure in self.state.failures:
                if failure[0] == path and failure[2] > 0:
                    failure[2] -= 1
                    raise SimError(failure[1], "simulated failure")
            data = handler(self, SimRequest(method=method, path=path, params=params, body=body or {}))
        except SimError as exc:
            return exc.errcode, {"errcode": exc.errcode, "errmsg": exc.errmsg}
        return 0, {"errcode": 0, "errmsg": "ok", **(data or {})}

    def _check_token(self, token: str | None) -> None:
        if not token:
            raise SimError(41001, "access_token missing")
        expiry = self.state.tokens.get(token)
        if expiry is None:
            raise SimError(40014, "invalid access_token")
        if expiry < time.time():
            raise SimError(42001, "access_token expired")

    # ---------------------------------------------------------------- callbacks to a portal

    def event_xml(self, fields: dict[str, Any]) -> str:
        base = {"ToUserName": self.state.corp_id, "FromUserName": "sys", "CreateTime": now(), "MsgType": "event"}
        parts = []
        for key, value in {**base, **fields}.items():
            if isinstance(value, int):
                parts.append(f"<{key}>{value}</{key}>")
            else:
                parts.append(f"<{key}><![CDATA[{str(value).replace(']]>', ']]]]><![CDATA[>')}]]></{key}>")
        return "<xml>" + "".join(parts) + "</xml>"

    def signed_post(self, xml: str) -> tuple[dict[str, str], str]:
        """(query params, body) of a POST WeCom would send for the decrypted `xml`."""
        timestamp, nonce = str(now()), str(int(time.time() * 1000) % 10**9)
        envelope, signature = self.crypto.encrypt_message(xml, timestamp=timestamp, nonce=nonce,
                                                          agent_id=self.state.agent_id)
        return {"msg_signature": signature, "timestamp": timestamp, "nonce": nonce}, envelope

    def send_event(
        self, callback_url: str | None, fields: dict[str, Any] | str, *, timeout: float = 30
    ) -> httpx.Response:
        """POST one encrypted event to a portal's /wecom/callback/, as WeCom does."""
        xml = fields if isinstance(fields, str) else self.event_xml(fields)
        params, envelope = self.signed_post(xml)
        return httpx.post(callback_url or self.callback_url, params=params, content=envelope.encode("utf-8"),
                          headers={"Content-Type": "text/xml"}, timeout=timeout)

    @staticmethod
    def add_contact_event(contact: ExternalContact, follower: FollowUser, welcome_code: str = "",
                          change_type: str = "add_external_contact") -> dict[str, Any]:
        fields: dict[str, Any] = {
            "Event": "change_external_contact", "ChangeType": change_type,
            "UserID": follower.userid, "ExternalUserID": contact.external_userid,
        }
        if follower.state:
            fields["State"] = follower.state
        if welcome_code:
            fields["WelcomeCode"] = welcome_code
        return fields

    @staticmethod
    def contact_event(change_type: str, *, userid: str, external_userid: str, **extra: Any) -> dict[str, Any]:
        return {"Event": "change_external_contact", "ChangeType": change_type, "UserID": userid,
                "ExternalUserID": external_userid, **extra}

    # ---------------------------------------------------------------- control routes (/sim/<action>)

    def control(self, method: str, action: str, raw: bytes) -> tuple[int, dict]:
        from .scenarios import run_action

        try:
            body = json.loads(raw.decode("utf-8")) if raw else {}
        except (UnicodeDecodeError, ValueError):
            return 400, {"error": "body must be JSON"}
        if method == "GET" and action == "state":
            return 200, self.snapshot()
        try:
            return 200, run_action(self, action.strip("/"), body if isinstance(body, dict) else {})
        except (KeyError, ValueError) as exc:
            return 400, {"error": str(exc)}
        except httpx.HTTPError as exc:
            return 502, {"error": f"portal unreachable: {type(exc).__name__}"}

    def snapshot(self) -> dict:
        s = self.state
        with s.lock:
            return {
                "corp_id": s.corp_id,
                "users": [u.as_json() for u in s.users.values()],
                "departments": [d.as_json() for d in s.departments.values()],
                "contacts": [
                    {**c.as_json(), "follow_user": [f.as_json() for f in c.follow_users]} for c in s.contacts.values()
                ],
                "tag_groups": [g.as_json() for g in s.tag_groups.values()],
                "welcome_messages": list(s.welcome_messages),
                "calls": len(s.calls),
            }
