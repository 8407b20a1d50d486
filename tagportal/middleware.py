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
