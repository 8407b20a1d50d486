"""API rate limits (API.md "Limits and health"): `API_THROTTLE_RATE` (default 600/min) per API
client (a browser session counts per employee) and, when a call names `employee=`, per acting
employee across every client. Counted in the default cache: Redis when `CACHE_URL` is set, so all
web machines share one count. Over the limit: 429 in the API error shape with `Retry-After`."""

from __future__ import annotations

import hashlib

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.throttling import SimpleRateThrottle

from org.models import ApiClient

from .actors import named_employee_userid


class PortalRateThrottle(SimpleRateThrottle):
    def get_rate(self):
        return getattr(settings, "API_THROTTLE_RATE", None) or None  # read per request: tests may change it

    def _key(self, ident: str) -> str:
        return self.cache_format % {"scope": self.scope, "ident": ident}


class ApiClientRateThrottle(PortalRateThrottle):
    """Per API client; a logged-in session counts per employee."""

    scope = "client"

    def get_cache_key(self, request, view):
        if isinstance(request.auth, ApiClient):
            return self._key(f"key{request.auth.pk}")
        user = request.user
        if user is not None and getattr(user, "is_authenticated", False) and user.pk is not None:
            return self._key(f"employee{user.pk}")
        return None  # unauthenticated: refused anyway (401)


class ActingEmployeeRateThrottle(PortalRateThrottle):
    """Per employee named with `employee=`, whichever API client names them."""

    scope = "acting"

    def get_cache_key(self, request, view):
        if not isinstance(request.auth, ApiClient):
            return None  # a session acts as its own employee: counted by ApiClientRateThrottle
        try:
            userid = named_employee_userid(request)
        except ParseError:
            # DRF keeps an empty body after a failed parse: the view would then answer a misleading
            # "name: required". The caller's real mistake is the body: say so now (a 400 parse_error).
            raise
        except Exception:  # noqa: BLE001 - an unreadable body is the view's 400, not the throttle's
            return None
        if not isinstance(userid, str) or not userid:
            return None
        return self._key(hashlib.sha256(userid.encode("utf-8", "replace")).hexdigest()[:32])
