"""API access: authenticated callers only; read-only keys and departed employees never write."""

from rest_framework import permissions

from org.models import ApiClient


class ApiAccess(permissions.BasePermission):
    message = "Authentication credentials were not provided or are not valid."

    def has_permission(self, request, view) -> bool:
        user = request.user
        if user is None or not getattr(user, "is_authenticated", False):
            return False
        if isinstance(request.auth, ApiClient):
            if request.method not in permissions.SAFE_METHODS and request.auth.read_only:
                self.message = "This API key is read-only."
                return False
            return True
        return bool(user.is_active)
