"""`departments/` and `employees/`: restricted querysets for reads, `org.services` for writes.

Everyone authenticated reads the org chart and address book; departments are written by
enterprise admins, employees by enterprise admins and HR (403 otherwise).
"""

from __future__ import annotations

from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view

from tagportal.api.pagination import IdCursorPagination
from tagportal.api.viewsets import RestrictedModelViewSet
from tagportal.errors import ValidationFailed
from tagportal.ids import parse_id

from .. import services
from ..models import Department, Employee, EmployeeStatus, Role
from .serializers import DepartmentSerializer, EmployeeSerializer

_EMPLOYEE = OpenApiParameter("employee", str, description="以该成员的身份（权限）调用 / act as this employee")


def _int(value: str, field: str) -> int:
    return parse_id(value, field)  # range-checked before the database (tagportal.ids)


def _choice(value: str, field: str, choices: list[str]) -> str:
    """A filter value from a fixed set; anything else is a 400, not an empty page."""
    if value not in choices:
        message = _("“%(field)s”的值“%(value)s”无效，可选：%(choices)s。") % {
            "field": field,
            "value": value,
            "choices": ", ".join(choices),
        }
        raise ValidationFailed(message, details={field: value})
    return value


class TreePagination(IdCursorPagination):
    ordering = ("tree_id", "lft", "id")


@extend_schema_view(
    list=extend_schema(
        parameters=[
            _EMPLOYEE,
            OpenApiParameter("parent", str, description="上级部门 id，或 null 只列根部门"),
            OpenApiParameter("external_id", str, description="企业微信部门ID"),
        ]
    ),
)
class DepartmentViewSet(RestrictedModelViewSet):
    """部门: the department tree, in tree order."""

    queryset = Department.objects.all()
    serializer_class = DepartmentSerializer
    pagination_class = TreePagination

    def get_queryset(self):
        qs = super().get_queryset()
        if self.action == "list":
            params = self.request.query_params
            parent = params.get("parent")
            if parent == "null":
                qs = qs.filter(parent__isnull=True)
            elif parent not in (None, ""):
                qs = qs.filter(parent_id=_int(parent, "parent"))
            if params.get("external_id"):
                qs = qs.filter(external_id=params["external_id"])
        return qs

    def perform_create(self, serializer):
        serializer.instance = services.department_create(actor=self.actor, **serializer.validated_data)

    def perform_update(self, serializer):
        serializer.instance = services.department_update(
            actor=self.actor, department=serializer.instance, **serializer.validated_data
        )

    def perform_destroy(self, instance):
        services.department_delete(actor=self.actor, department=instance)


@extend_schema_view(
    list=extend_schema(
        parameters=[
            _EMPLOYEE,
            OpenApiParameter("userid", str),
            OpenApiParameter("department", int, description="所属部门 id（仅该部门，不含下级）"),
            OpenApiParameter("status", str, enum=EmployeeStatus.values),
            OpenApiParameter("role", str, enum=Role.values),
        ]
    ),
)
class EmployeeViewSet(RestrictedModelViewSet):
    """成员: employees with departments, managed departments, roles and status."""

    queryset = Employee.objects.all()
    serializer_class = EmployeeSerializer
    pagination_class = IdCursorPagination

    def get_queryset(self):
        qs = super().get_queryset().prefetch_related("departments", "managed_departments", "groups")
        if self.action == "list":
            params = self.request.query_params
            if params.get("userid"):
                qs = qs.filter(userid=params["userid"])
            if params.get("department"):
                qs = qs.filter(departments=_int(params["department"], "department"))
            if params.get("status"):
                qs = qs.filter(status=_choice(params["status"], "status", EmployeeStatus.values))
            if params.get("role"):
                qs = qs.filter(groups__name=_choice(params["role"], "role", Role.values))
        return qs

    def perform_create(self, serializer):
        serializer.instance = services.employee_create(actor=self.actor, **serializer.validated_data)

    def perform_update(self, serializer):
        serializer.instance = services.employee_update(
            actor=self.actor, employee=serializer.instance, **serializer.validated_data
        )

    def perform_destroy(self, instance):
        services.employee_delete(actor=self.actor, employee=instance)
