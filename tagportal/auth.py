"""Login throttling with django-axes: after `AXES_FAILURE_LIMIT` failed logins for one account from
one address, that pair is locked for `AXES_COOLOFF_TIME`; the login page says so in Chinese, and an
enterprise admin can unlock it on 系统 → 登录锁定 (`login_lockouts_view`).

API keys never go through `authenticate()`, so the API is not affected; neither are sessions made
without a request (`Client.login()` in tests, `force_login`).
"""

from __future__ import annotations

from axes.backends import AxesStandaloneBackend
from axes.models import AccessAttempt
from axes.utils import reset
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.forms.utils import ErrorList
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _


class LoginThrottleBackend(AxesStandaloneBackend):
    """Axes' lockout check for logins made through a request (the login form)."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:  # no client address: not a login over HTTP, nothing to throttle
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)


def client_ip(request) -> str | None:
    """The caller's address: behind `PROXY_COUNT` proxies, the one they saw (X-Forwarded-For)."""
    count = getattr(settings, "PROXY_COUNT", 0)
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if count and forwarded:
        hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
        if hops:
            return hops[-min(count, len(hops))]
    return request.META.get("REMOTE_ADDR")


def cooloff_minutes() -> int:
    cooloff = settings.AXES_COOLOFF_TIME
    return int(cooloff.total_seconds() // 60) if cooloff else 0


def lockout_message(username: str = "") -> str:
    minutes = cooloff_minutes()
    if minutes:
        return _("登录失败次数过多，账号“%(username)s”在此网络地址已被暂时锁定。请 %(n)d 分钟后再试，"
                 "或请企业管理员在“系统 → 登录锁定”中解锁。") % {"username": username, "n": minutes}
    return _("登录失败次数过多，账号“%(username)s”在此网络地址已被锁定。请企业管理员在“系统 → 登录锁定”中解锁。") % {
        "username": username}


def lockout_response(request, original_response=None, credentials=None):
    """The login page again, with the lockout as its error (HTTP 429), never a bare text page."""
    username = (credentials or {}).get("username") or request.POST.get("username", "")
    form = admin.site.login_form(request, initial={"username": username})
    form._errors = {"__all__": ErrorList([lockout_message(username)])}  # shown as the form's error
    context = {
        **admin.site.each_context(request),
        "title": _("登录"),
        "subtitle": None,
        "app_path": request.get_full_path(),
        "username": username,
        "form": form,
        "next": request.GET.get("next", reverse("admin:index")),
        "tp_locked_out": True,
    }
    return TemplateResponse(request, admin.site.login_template or "admin/login.html", context, status=429).render()


def locked_out_attempts():
    """The (account, address) pairs locked now."""
    qs = AccessAttempt.objects.filter(failures_since_start__gte=settings.AXES_FAILURE_LIMIT)
    if settings.AXES_COOLOFF_TIME:
        qs = qs.filter(attempt_time__gte=timezone.now() - settings.AXES_COOLOFF_TIME)
    return qs.order_by("-attempt_time")


def login_lockouts_view(request):
    """系统 → 登录锁定: the locked pairs, each with 解锁 (enterprise admins only)."""
    user = request.user
    if not (user.is_superuser or getattr(user, "has_role", lambda *r: False)("enterprise_admin")):
        raise PermissionDenied
    if request.method == "POST":
        attempt = locked_out_attempts().filter(pk=request.POST.get("attempt") or 0).first() \
            if str(request.POST.get("attempt", "")).isdigit() else None
        if attempt is not None:
            reset(ip=attempt.ip_address, username=attempt.username)
            messages.success(request, _("已解锁账号“%(username)s”（地址 %(ip)s）。") % {
                "username": attempt.username, "ip": attempt.ip_address})
        return HttpResponseRedirect(reverse("admin:login_lockouts"))
    context = {
        **admin.site.each_context(request),
        "title": _("登录锁定"),
        "attempts": locked_out_attempts()[:500],
        "failure_limit": settings.AXES_FAILURE_LIMIT,
        "cooloff_minutes": cooloff_minutes(),
    }
    return TemplateResponse(request, "admin/tp_login_lockouts.html", context)
