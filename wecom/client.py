"""The WeCom server API client (httpx): access token, typed errors, timeouts, retries.

    from wecom.client import WeComClient, WeComError
    client = WeComClient()                      # settings: WECOM_CORP_ID, WECOM_SECRET, WECOM_API_BASE
    client.get("externalcontact/get", external_userid="wm...")     # -> the JSON dict (errcode 0)
    client.post("externalcontact/mark_tag", {"userid": ..., ...})

- The access token (`gettoken`) is cached in Django's cache (Redis where production configures
  it) until shortly before `expires_in`; on 40014 (invalid) or 42001 (expired) it is fetched
  again once and the call repeated.
- errcode ≠ 0 raises `WeComError(errcode, errmsg)`; busy (-1) and rate limits (45009, 45011,
  45033) raise `WeComRetryableError` after the client's own retries with backoff.
- Every request has a timeout; transport failures raise `WeComTransportError` (retryable).
- No secret or access token reaches a log line or an exception text: URLs are logged without
  their query, and httpx's own request log is redacted (see `_RedactingFilter`).
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from typing import Any

import httpx
from django.core.cache import cache

from . import conf

logger = logging.getLogger(__name__)

BUSY = -1
TOKEN_INVALID = 40014
TOKEN_EXPIRED = 42001
TOKEN_CODES = frozenset({TOKEN_INVALID, TOKEN_EXPIRED})
# -1 系统繁忙; 45009 接口调用超过限制; 45011 API调用太频繁; 45033 接口并发调用超过限制.
RETRYABLE_CODES = frozenset({BUSY, 45009, 45011, 45033})
TOKEN_MARGIN = 300  # seconds before expires_in at which a cached token is no longer used

_SECRET_QUERY = re.compile(r"(access_token|corpsecret|secret)=[^&\s'\"]*", re.IGNORECASE)


def redact(text: str) -> str:
    """Hide access tokens and secrets in a URL or message."""
    return _SECRET_QUERY.sub(lambda m: f"{m.group(1)}=***", text)


class _RedactingFilter(logging.Filter):
    """httpx logs every request URL at INFO, with its query (our access_token): redact it."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken record is not ours to fix
            return True
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


for _name in ("httpx", "httpcore"):
    _logger = logging.getLogger(_name)
    if not any(isinstance(f, _RedactingFilter) for f in _logger.filters):
        _logger.addFilter(_RedactingFilter())


class WeComError(Exception):
    """WeCom answered errcode ≠ 0 (or could not be reached). `errcode`, `errmsg` as WeCom gave them."""

    retryable = False

    def __init__(self, errcode: int, errmsg: str = "", *, path: str = ""):
        self.errcode = errcode
        self.errmsg = redact(str(errmsg or ""))
        self.path = path
        super().__init__(f"WeCom {path or 'API'} errcode {errcode}: {self.errmsg}")


class WeComRetryableError(WeComError):
    """Busy or rate-limited (-1, 45009, 45011, 45033): try again later."""

    retryable = True


class WeComTokenError(WeComError):
    """The access token stayed invalid after one refresh, or gettoken itself failed."""


class WeComTransportError(WeComRetryableError):
    """No answer: timeout, connection refused, HTTP status ≠ 200, or a body that is not JSON."""

    def __init__(self, errmsg: str, *, path: str = ""):
        super().__init__(-2, errmsg, path=path)


class WeComNotConfigured(WeComError):
    """WECOM_CORP_ID / WECOM_SECRET are not set: the portal runs standalone."""

    def __init__(self):
        super().__init__(-3, "WeCom is not configured (WECOM_CORP_ID, WECOM_SECRET)")


def error_for(errcode: int, errmsg: str, path: str) -> WeComError:
    if errcode in RETRYABLE_CODES:
        return WeComRetryableError(errcode, errmsg, path=path)
    return WeComError(errcode, errmsg, path=path)


class WeComClient:
    """One small client for WeCom's server API. Thread-safe enough for a worker; cheap to create."""

    def __init__(
        self,
        *,
        corp_id: str | None = None,
        secret: str | None = None,
        api_base: str | None = None,
        timeout: float | None = None,
        retries: int = 3,
        backoff: float = 0.5,
        transport: httpx.BaseTransport | None = None,
    ):
        self.corp_id = conf.corp_id() if corp_id is None else corp_id
        self.secret = conf.secret() if secret is None else secret
        self.api_base = (conf.api_base() if api_base is None else api_base).rstrip("/")
        self.timeout = conf.timeout() if timeout is None else timeout
        self.retries = retries
        self.backoff = backoff
        self._transport = transport
        self._http: httpx.Client | None = None

    # ------------------------------------------------------------------ public

    def get(self, path: str, **params: Any) -> dict:
        return self._call("GET", path, params=params, payload=None)

    def post(self, path: str, payload: dict | None = None) -> dict:
        return self._call("POST", path, params={}, payload=payload or {})

    def access_token(self, *, refresh: bool = False) -> str:
        """The cached token, or a fresh one from `gettoken` (cached until shortly before expiry)."""
        if not (self.corp_id and self.secret):
            raise WeComNotConfigured()
        key = self._cache_key()
        if not refresh:
            token = cache.get(key)
            if token:
                return token
        data = self._request("GET", "gettoken", params={"corpid": self.corp_id, "corpsecret": self.secret})
        errcode = int(data.get("errcode", 0) or 0)
        if errcode:
            if errcode in RETRYABLE_CODES:
                raise WeComRetryableError(errcode, data.get("errmsg", ""), path="gettoken")
            raise WeComTokenError(errcode, data.get("errmsg", ""), path="gettoken")
        token = data.get("access_token")
        if not isinstance(token, str) or not token:
            raise WeComTokenError(-4, "gettoken answered no access_token", path="gettoken")
        expires_in = int(data.get("expires_in") or 7200)
        ttl = expires_in - TOKEN_MARGIN if expires_in > 2 * TOKEN_MARGIN else max(expires_in // 2, 1)
        cache.set(key, token, timeout=ttl)
        logger.info("WeCom access token fetched (valid %ss, cached %ss)", expires_in, ttl)
        return token

    def forget_token(self) -> None:
        cache.delete(self._cache_key())

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None

    def __enter__(self) -> WeComClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ internals

    def _cache_key(self) -> str:
        # The secret identifies the app, but must not appear even in a cache key.
        digest = hashlib.sha256(f"{self.api_base}|{self.corp_id}|{self.secret}".encode()).hexdigest()[:24]
        return f"wecom:access_token:{digest}"

    def _client(self) -> httpx.Client:
        if self._http is None:
            self._http = httpx.Client(
                timeout=httpx.Timeout(self.timeout), transport=self._transport, follow_redirects=False
            )
        return self._http

    def _call(self, method: str, path: str, *, params: dict, payload: dict | None) -> dict:
        path = path.strip("/")
        refreshed = False
        attempt = 0
        while True:
            try:
                token = self.access_token(refresh=False)
                data = self._request(method, path, params={**params, "access_token": token}, payload=payload)
            except WeComRetryableError:  # no answer, or gettoken busy
                if attempt >= self.retries:
                    raise
                attempt += 1
                self._sleep(attempt)
                continue
            errcode = int(data.get("errcode", 0) or 0)
            if errcode == 0:
                return data
            if errcode in TOKEN_CODES and not refreshed:
                logger.info("WeCom %s: access token rejected (errcode %s), fetching a new one", path, errcode)
                self.forget_token()  # the next round fetches a new one
                refreshed = True
                continue
            if errcode in RETRYABLE_CODES and attempt < self.retries:
                attempt += 1
                logger.warning("WeCom %s busy or rate-limited (errcode %s), retry %s", path, errcode, attempt)
                self._sleep(attempt)
                continue
            if errcode in TOKEN_CODES:
                raise WeComTokenError(errcode, data.get("errmsg", ""), path=path)
            raise error_for(errcode, data.get("errmsg", ""), path)

    def _sleep(self, attempt: int) -> None:
        time.sleep(min(self.backoff * (2 ** (attempt - 1)), 10))

    def _request(self, method: str, path: str, *, params: dict, payload: dict | None = None) -> dict:
        url = f"{self.api_base}/{path}"
        try:
            if method == "GET":
                response = self._client().get(url, params=params)
            else:
                response = self._client().post(url, params=params, json=payload)
        except httpx.HTTPError as exc:
            logger.warning("WeCom %s %s: %s", method, path, type(exc).__name__)
            raise WeComTransportError(f"{type(exc).__name__}: {redact(str(exc))}", path=path) from None
        if response.status_code != 200:
            logger.warning("WeCom %s %s: HTTP %s", method, path, response.status_code)
            raise WeComTransportError(f"HTTP {response.status_code}", path=path)
        try:
            data = response.json()
        except ValueError:
            raise WeComTransportError("answer is not JSON", path=path) from None
        if not isinstance(data, dict):
            raise WeComTransportError("answer is not a JSON object", path=path)
        logger.debug("WeCom %s %s: errcode %s", method, path, data.get("errcode", 0))
        return data


def client() -> WeComClient:
    """A client for the configured corp (raises WeComNotConfigured on use when not configured)."""
    return WeComClient()
