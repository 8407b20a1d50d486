"""WeCom behind the mobile sidebar portrait (`customers.sidebar`, /m/).

Registered from `WecomConfig.ready()` in the hooks `customers` offers; does nothing until the portal
is connected (`conf.api_configured()` and `WECOM_AGENT_ID` for the JS-SDK):

- **Who is the customer?** The sidebar's entry page loads WeCom's JS-SDK, injects the app's identity
  with `wx.agentConfig` (corp id, agent id, timestamp, nonce, and a signature: the SHA-1 of
  `jsapi_ticket=…&noncestr=…&timestamp=…&url=…` with the *app's* ticket, `ticket/get?type=agent_config`,
  cached for its lifetime) and asks `getCurExternalContact`; then it opens that customer's portrait.
- **Who is the employee?** Opened inside WeCom (its browser says `wxwork`) by someone not logged in,
  the page goes through WeCom's OAuth (`snsapi_base`): WeCom sends the browser back to
  `/wecom/oauth/` with a `code`, `auth/getuserinfo` turns it into the employee's `userid`, and the
  employee is logged in (an active, not departed account with that userid) and sent on to the page.
  Elsewhere the usual login form is used.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_backends, login
from django.contrib.auth.backends import ModelBackend
from django.core.cache import cache
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _

from org.models import Employee, EmployeeStatus

from . import conf
from .client import WeComError, client

logger = logging.getLogger(__name__)

JSSDK_URL = "https://res.wx.qq.com/open/js/jweixin-1.2.0.js"
OAUTH_URL = "https://open.weixin.qq.com/connect/oauth2/authorize"
TICKET_MARGIN = 300  # seconds before the ticket's expiry when a new one is fetched
SESSION_KEY = "wecom_oauth"


def sidebar_connected() -> bool:
    return conf.api_configured() and bool(conf.agent_id())


def in_wecom(request) -> bool:
    """WeCom's built-in browser (desktop and mobile) says `wxwork` in its user agent."""
    return "wxwork" in request.headers.get("User-Agent", "").lower()


# ---------------------------------------------------------------- JS-SDK (wx.agentConfig)


def agent_jsapi_ticket(*, api=None) -> str:
    """The app's jsapi ticket (`ticket/get?type=agent_config`), cached until shortly before expiry."""
    key = f"wecom:agent_ticket:{conf.corp_id()}:{conf.agent_id()}"
    ticket = cache.get(key)
    if ticket:
        return ticket
    answer = (api or client()).get("ticket/get", type="agent_config")
    ticket = str(answer.get("ticket") or "")
    if not ticket:
        raise WeComError(-4, "ticket/get answered no ticket", path="ticket/get")
    expires_in = int(answer.get("expires_in") or 7200)
    cache.set(key, ticket, timeout=max(expires_in - TICKET_MARGIN, 60))
    return ticket


def jsapi_signature(*, ticket: str, nonce: str, timestamp: int, url: str) -> str:
    """WeCom's JS-SDK signature: SHA-1 of the four fields in this order, `url` without its fragment."""
    url = url.split("#", 1)[0]
    return hashlib.sha1(f"jsapi_ticket={ticket}&noncestr={nonce}&timestamp={timestamp}&url={url}".encode()).hexdigest()


def agent_config(request) -> dict:
    """What `wx.agentConfig` needs for the page of this request."""
    nonce = secrets.token_hex(8)
    timestamp = int(time.time())
    url = request.build_absolute_uri()
    return {
        "corpid": conf.corp_id(),
        "agentid": conf.agent_id(),
        "timestamp": timestamp,
        "nonceStr": nonce,
        "signature": jsapi_signature(ticket=agent_jsapi_ticket(), nonce=nonce, timestamp=timestamp, url=url),
    }


# ---------------------------------------------------------------- OAuth (snsapi_base)


def oauth_redirect(request, next_url: str) -> HttpResponseRedirect:
    """Send the browser through WeCom's silent OAuth; `/wecom/oauth/` gets it back with a code."""
    state = secrets.token_urlsafe(16)
    request.session[SESSION_KEY] = {"state": state, "next": next_url}
    query = urlencode({
        "appid": conf.corp_id(),
        "redirect_uri": request.build_absolute_uri(reverse("wecom:oauth")),
        "response_type": "code",
        "scope": "snsapi_base",
        "state": state,
        "agentid": conf.agent_id(),
    })
    return HttpResponseRedirect(f"{OAUTH_URL}?{query}#wechat_redirect")


def employee_for_code(code: str, *, api=None) -> Employee | None:
    """`auth/getuserinfo`: the code's member, as an employee allowed to log in (else None)."""
    answer = (api or client()).get("auth/getuserinfo", code=code)
    userid = str(answer.get("userid") or answer.get("UserId") or "")
    if not userid:
        return None  # a customer or a non-member opened the page: no employee behind this code
    return Employee.objects.filter(userid=userid, status=EmployeeStatus.ACTIVE, is_active=True).first()


def oauth_view(request):
    """/wecom/oauth/: WeCom's redirect back with `code` and our `state`; log the employee in."""
    pending = request.session.pop(SESSION_KEY, None) or {}
    login_url = reverse("admin:login")
    next_url = pending.get("next") or reverse("sidebar-home")
    if not url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()},
                                           require_https=request.is_secure()):
        next_url = reverse("sidebar-home")
    code, state = request.GET.get("code", ""), request.GET.get("state", "")
    if not code or not pending.get("state") or not secrets.compare_digest(state, pending["state"]):
        messages.error(request, _("企业微信登录已失效，请重新打开页面或用账号密码登录。"))
        return HttpResponseRedirect(f"{login_url}?{urlencode({'next': next_url})}")
    try:
        employee = employee_for_code(code)
    except WeComError as exc:
        logger.warning("WeCom OAuth: auth/getuserinfo failed (errcode %s)", exc.errcode)
        employee = None
    if employee is None:
        messages.error(request, _("无法通过企业微信确认你的身份（或账号已离职、未开通），请用账号密码登录。"))
        return HttpResponseRedirect(f"{login_url}?{urlencode({'next': next_url})}")
    login(request, employee, backend=_model_backend())
    return HttpResponseRedirect(next_url)


def _model_backend() -> str:
    """The configured backend that loads users from the database (the session must name one)."""
    backend = next((b for b in get_backends() if isinstance(b, ModelBackend)), None)
    return f"{type(backend).__module__}.{type(backend).__qualname__}" if backend else \
        "django.contrib.auth.backends.ModelBackend"


class WeComSidebar:
    """The sidebar integration `customers.hooks.register_sidebar_integration` takes."""

    def login(self, request, next_url: str):
        if sidebar_connected() and in_wecom(request):
            return oauth_redirect(request, next_url)
        return None

    def page_context(self, request) -> dict | None:
        if not sidebar_connected():
            return None
        try:
            config = agent_config(request)
        except WeComError as exc:
            logger.warning("WeCom JS-SDK: no agent ticket (errcode %s)", exc.errcode)
            return None
        return {"script_url": getattr(settings, "WECOM_JSSDK_URL", "") or JSSDK_URL, "agent_config": config}


SIDEBAR = WeComSidebar()


def connect() -> None:
    from customers.hooks import register_sidebar_integration

    register_sidebar_integration(SIDEBAR)  # WeCom's unassigned count: wecom/transfers.py (sync) registers it
