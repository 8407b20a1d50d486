"""API access: authenticated callers only; read-only keys and departed employees never write."""

from django.utils.translation import gettext_lazy as _
from rest_framework import permissions

from org.models import ApiClient


class ApiAccess(permissions.BasePermission):
    message = _("未提供身份认证信息，或认证信息无效。")

    def has_permission(self, request, view) -> bool:
        user = request.user
        if user is None or not getattr(user, "is_authenticated", False):
            return False
        if isinstance(request.auth, ApiClient):
            if request.method not in permissions.SAFE_METHODS and request.auth.read_only:
                self.message = _("此 API 密钥是只读的。")
                return False
            return True
        return bool(user.is_active)
