"""`customers/`: list (API.md filters, cursor pages, never a COUNT), retrieve, upsert by
`external_userid`, and per customer `tags/`, `notes/`, `messages/`.

Who sees which customer is `selectors.visible_customers` (via `customers_filtered`); a customer out
of reach is 404. Every write is a service call; tag writes by API clients are audited with source
`api`, those of a logged-in session with source `manual`.
"""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from org.models import ApiClient
from tagportal.api.pagination import CursorPagination
from tagportal.api.viewsets import ActorMixin
from tagportal.errors import ValidationFailed

from .. import services
from ..models import Message, Note, TagSource
from ..selectors import (
    customer_own_personal_tag_ids,
    customer_visible_tag_ids,
    customers_filtered,
    parse_customer_filter,
    visible_customers,
    with_card_data,
)
from ..transfers import without_archived_portraits
from .serializers import (
    CustomerSerializer,
    CustomerTagsResultSerializer,
    CustomerTagsSerializer,
    CustomerUpsertSerializer,
    MessageSerializer,
    NoteSerializer,
)

_EMPLOYEE = OpenApiParameter("employee", str, description="以该成员的身份（可见范围与权限）调用")
_FILTERS = [
    _EMPLOYEE,
    OpenApiParameter("tags_all", str, description="同时有这些标签（逗号分隔的标签 id）"),
    OpenApiParameter("tags_any", str, description="有其中任一标签"),
    OpenApiParameter("tags_none", str, description="没有这些标签"),
    OpenApiParameter("follower", str, description="跟进成员 userid"),
    OpenApiParameter("department", int, description="跟进成员所属部门（仅该部门，不含下级）"),
    OpenApiParameter("state", str, description="渠道 state"),
    OpenApiParameter("external_userid", str),
    OpenApiParameter("q", str, description="名称或备注"),
    OpenApiParameter("updated_since", str, description="ISO 时间"),
    OpenApiParameter("added_from", str, description="添加日期起 (YYYY-MM-DD)"),
    OpenApiParameter("added_to", str, description="添加日期止 (YYYY-MM-DD)"),
]
_ID_LISTS = ("add", "remove", "personal_add", "personal_remove")


class NotePagination(CursorPagination):
    ordering = ("-created_at", "-id")


class MessagePagination(CursorPagination):
    ordering = ("-sent_at", "-id")


def tag_source(request) -> str:
    """API clients write with source `api`; a logged-in employee's session is a manual edit."""
    return TagSource.API if isinstance(request.auth, ApiClient) else TagSource.MANUAL


@extend_schema_view(
    list=extend_schema(parameters=_FILTERS),
    retrieve=extend_schema(parameters=[_EMPLOYEE]),
    create=extend_schema(
        request=CustomerUpsertSerializer, responses={200: CustomerSerializer, 201: CustomerSerializer}
    ),
)
class CustomerViewSet(ActorMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """客户. The queryset is always the caller's visible customers (`employee=` narrows an API client)."""

    serializer_class = CustomerSerializer
    pagination_class = CursorPagination

    def get_queryset(self):
        employee = self.actor.employee
        if self.action == "list":
            qs = customers_filtered(employee=employee, flt=parse_customer_filter(self.request.query_params))
        else:
            qs = visible_customers(employee)
        return with_card_data(qs, employee=employee)

    def _card(self, customer):
        employee = self.actor.employee
        card = with_card_data(visible_customers(employee), employee=employee).get(pk=customer.pk)
        return CustomerSerializer(card).data

    def create(self, request, *args, **kwargs):
        customer, created = services.customer_upsert(actor=self.actor, data=request.data)
        return Response(self._card(customer), status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)

    @extend_schema(request=CustomerTagsSerializer, responses=CustomerTagsResultSerializer)
    @action(detail=True, methods=["post"])
    def tags(self, request, pk=None):
        customer = _visible_or_404(self)
        body = request.data
        if not isinstance(body, dict):
            raise ValidationFailed("请求体必须是对象，例如 {\"add\": [1, 2]}。", details={"body": "expected an object"})
        lists = {}
        for key in _ID_LISTS:
            value = body.get(key, [])
            if not isinstance(value, list):
                raise ValidationFailed(_("%(key)s 必须是 id 列表。") % {"key": key}, details={key: value})
            lists[key] = value
        change = services.customer_tags_update(actor=self.actor, customer=customer, source=tag_source(request), **lists)
        employee = self.actor.employee
        return Response({
            "tags": customer_visible_tag_ids(employee=employee, customer=customer),
            "personal_tags": customer_own_personal_tag_ids(employee=employee, customer=customer),
            "added": sorted(t.pk for t in change.added),
            "removed": sorted(t.pk for t in change.removed),
        })

    @extend_schema(request=NoteSerializer, responses=NoteSerializer, parameters=[_EMPLOYEE])
    @action(detail=True, methods=["get", "post"])
    def notes(self, request, pk=None):
        customer = _visible_or_404(self)
        if request.method == "POST":
            text = request.data.get("text") if isinstance(request.data, dict) else None
            if text is not None and not isinstance(text, str):
                raise ValidationFailed("text 必须是字符串。", details={"text": text})
            note = services.note_create(actor=self.actor, customer=customer, text=text)
            return Response(NoteSerializer(note).data, status=status.HTTP_201_CREATED)
        qs = without_archived_portraits(  # a transfer without the portrait leaves them archived (rule 12)
            Note.objects.filter(customer=customer), self.actor.employee, author_ref="author_id"
        ).select_related("author")
        return _paged(self, NotePagination(), qs, NoteSerializer)

    @extend_schema(responses=MessageSerializer(many=True), parameters=[_EMPLOYEE])
    @action(detail=True, methods=["get"])
    def messages(self, request, pk=None):
        customer = _visible_or_404(self)
        qs = without_archived_portraits(
            Message.objects.filter(customer=customer), self.actor.employee, author_ref="employee_id"
        ).select_related("employee")
        return _paged(self, MessagePagination(), qs, MessageSerializer)


def _visible_or_404(view):
    """The customer of a detail route (no card prefetches); 404 when out of the caller's reach."""
    return get_object_or_404(visible_customers(view.actor.employee), pk=view.kwargs["pk"])


def _paged(view, paginator, qs, serializer_class):
    page = paginator.paginate_queryset(qs, view.request, view=view)
    return paginator.get_paginated_response(serializer_class(page, many=True).data)
