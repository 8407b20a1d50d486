"""Error pages that show nothing internal: a Chinese page for people, the API's error shape under /api/."""

from __future__ import annotations

from django.http import JsonResponse
from django.views import defaults
from django.views.decorators.csrf import requires_csrf_token


@requires_csrf_token
def server_error(request, template_name=defaults.ERROR_500_TEMPLATE_NAME):
    if request.path_info.startswith("/api/"):
        from django.utils.translation import gettext as _

        from tagportal.api.exceptions import error_body

        return JsonResponse(error_body("server_error", _("服务器内部错误，请稍后再试。")), status=500)
    return defaults.server_error(request, template_name)
