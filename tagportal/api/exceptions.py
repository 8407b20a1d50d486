"""One exception handler: every API error becomes `{"error": {"code", "message", "details"}}`."""

from __future__ import annotations

import re

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DataError
from django.http import Http404, JsonResponse
from django.utils.translation import gettext as _
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

from tagportal.errors import DomainError


def error_body(code: str, message: str, details=None) -> dict:
    return {"error": {"code": code, "message": message, "details": details}}


def _first_message(details) -> str:
    if isinstance(details, dict):
        for key, value in details.items():
            inner = _first_message(value)
            return inner if key == "non_field_errors" else f"{key}: {inner}"
    if isinstance(details, list) and details:
        return _first_message(details[0])
    return str(details)


def exception_handler(exc, context):
    if isinstance(exc, DomainError):
        return Response(error_body(exc.code, exc.message, exc.details), status=exc.status_code)
    if isinstance(exc, DjangoValidationError):
        details = exc.message_dict if hasattr(exc, "error_dict") else exc.messages
        return Response(error_body("invalid", _first_message(details), details), status=400)
    if isinstance(exc, DataError):
        # Safety net: a value the database refuses (a NUL character, out of range) is bad input, not a 500.
        set_rollback()
        return Response(error_body("invalid", "请求中有数据库无法保存的值（例如 NUL 字符或超出范围的数字）。"),
                        status=400)
    if isinstance(exc, OverflowError):
        # Safety net behind tagportal.ids: an integer beyond 64 bits reached SQLite's driver.
        set_rollback()
        return Response(error_body("invalid", _("请求中有超出范围的整数（id 为 1 到 2**63-1）。")), status=400)
    if isinstance(exc, exceptions.ParseError):
        # DRF's "JSON parse error - Expecting value: line 1 column 1 (char 0)" is Python's English:
        # say it in the caller's language, keeping where the body broke.
        where = re.search(r"line (\d+) column (\d+)", str(exc.detail))
        message = (_("请求体不是有效的 JSON（第 %(line)s 行第 %(column)s 列附近）。")
                   % {"line": where.group(1), "column": where.group(2)}) if where else _("请求体不是有效的 JSON。")
        return Response(error_body("parse_error", message, {"body": "invalid JSON"}), status=400)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()

    response = drf_exception_handler(exc, context)  # sets Retry-After on a 429
    if response is None:
        return None
    if isinstance(exc, exceptions.Throttled):
        wait = int(exc.wait) if exc.wait is not None else None
        message = (_("请求过于频繁，请 %(n)d 秒后再试。") % {"n": wait} if wait is not None
                   else _("请求过于频繁，请稍后再试。"))
        response.data = error_body("throttled", message, {"retry_after": wait})
        return response
    if isinstance(exc, exceptions.ValidationError):
        details = exc.detail
        response.data = error_body("invalid", _first_message(details), details)
    else:
        detail = getattr(exc, "detail", str(exc))
        code = detail.code if hasattr(detail, "code") else "error"
        if isinstance(exc, exceptions.NotAuthenticated):
            response.status_code = status.HTTP_401_UNAUTHORIZED
        response.data = error_body(str(code), str(detail))
    return response


def api_not_found(request, *args, **kwargs):
    """404 for unknown routes under /api/, in the API's error shape."""
    message = _("没有与“%(path)s”匹配的 API 路径。") % {"path": request.path}
    return JsonResponse(error_body("not_found", message), status=404)
