"""The public landing page of a channel code (`/c/<state>/`, no login): what a customer who scans a
standalone code sees — the code's name, description and welcome message, who will receive them — and,
while the portal runs without WeCom, a form to try the flow (it adds a trial customer through the
code's state, so the code's tags and statistics work as with WeCom). Nothing private is shown: no tags,
no customers, no figures."""

from __future__ import annotations

from django.conf import settings
from django.core.cache import cache
from django.http import Http404
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from tagportal.errors import DomainError

from .models import ChannelCode
from .qr import inline_svg, qr_payload
from .selectors import receivers_now
from .services import channel_try_add

TRIES_PER_HOUR = 20


def wecom_connected() -> bool:
    return bool(getattr(settings, "WECOM_CORP_ID", ""))


def _client_ip(request) -> str:
    return request.META.get("REMOTE_ADDR", "") or "unknown"


@require_http_methods(["GET", "POST"])
def landing_view(request, state: str):
    code = ChannelCode.objects.filter(state=state).first()
    if code is None:
        raise Http404(_("没有这个渠道活码。"))
    can_try = code.enabled and not code.config_id and not wecom_connected()
    result = error = None
    if request.method == "POST":
        if not can_try:
            error = _("此渠道活码现在不能在这里试用。")
        else:
            key = f"channels-try:{_client_ip(request)}"
            tries = cache.get(key, 0)
            if tries >= TRIES_PER_HOUR:
                error = _("试用次数过多，请一小时后再试。")
            else:
                cache.set(key, tries + 1, 3600)
                try:
                    _add, receiver = channel_try_add(code=code, nickname=request.POST.get("nickname", ""))
                except DomainError as exc:
                    error = exc.message
                else:
                    result = {"receiver": receiver.name or receiver.userid,
                              "nickname": request.POST["nickname"].strip()}
    receiver = receivers_now(code).next if code.enabled else None
    context = {
        "code": code,
        "receiver_name": (receiver.name or receiver.userid) if receiver else None,
        "qr_svg": inline_svg(qr_payload(code, request)),
        "can_try": can_try,
        "result": result,
        "error": error,
    }
    return render(request, "channels/landing.html", context, status=400 if error and request.method == "POST" else 200)
