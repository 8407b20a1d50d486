"""The portal speaks Chinese unless the user picked another language with the switch."""

from __future__ import annotations

from django.conf import settings
from django.middleware.locale import LocaleMiddleware
from django.utils import translation


class PortalLocaleMiddleware(LocaleMiddleware):
    """Replaces LocaleMiddleware: portal pages use the language cookie, else LANGUAGE_CODE
    (zh-hans), ignoring Accept-Language; the API under /api/ keeps honouring Accept-Language for
    API clients. The portal's own pages calling the API from the browser (the 数据看板's charts, the
    channel code's stats) carry the session cookie: they get the page's language, so an English
    browser does not put English chart labels on a Chinese page."""

    def process_request(self, request):
        if request.path_info.startswith("/api/") and settings.SESSION_COOKIE_NAME not in request.COOKIES:
            return super().process_request(request)
        language = request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME)
        if not language or not translation.check_for_language(language):
            language = settings.LANGUAGE_CODE
        language = translation.get_supported_language_variant(language)
        translation.activate(language)
        request.LANGUAGE_CODE = translation.get_language()


class RequestSizeLimitMiddleware:
    """413 for a request body over `REQUEST_BODY_MAX_SIZE`, before anything reads it. Views that take
    up to 10,000 items say `max_body_size = settings.BULK_REQUEST_MAX_SIZE` (tagging/bulk/, messages/).

    DRF reads JSON bodies from the stream, past Django's DATA_UPLOAD_MAX_MEMORY_SIZE check: this is the
    limit that holds for the API."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        view_class = getattr(view_func, "cls", None) or getattr(view_func, "view_class", None)
        limit = getattr(view_class, "max_body_size", None) or settings.REQUEST_BODY_MAX_SIZE
        if length <= limit:
            return None
        from django.http import HttpResponse, JsonResponse
        from django.utils.translation import gettext as _

        message = _("请求体过大（%(size)d 字节，上限 %(limit)d 字节）。") % {"size": length, "limit": limit}
        if request.path_info.startswith("/api/"):
            from tagportal.api.exceptions import error_body

            return JsonResponse(error_body("too_large", message, {"max_bytes": limit, "given_bytes": length}),
                                status=413)
        return HttpResponse(message, status=413, content_type="text/plain; charset=utf-8")
