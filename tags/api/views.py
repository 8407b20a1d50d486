"""`tag-groups/`, `tags/`, `personal-tags/`: restricted querysets for reads, services for writes.

Objects the caller may not see are 404; a caller who sees an object but may not change it gets 403.
`GET tag-groups/?employee=<userid>` lists what that employee sees in the taxonomy (everything for
tag admins, who manage all groups); add `usable=true` for the groups whose tags they may apply.
"""

from __future__ import annotations

from django.db.models import Prefetch
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.response import Response

from org.models import Employee
from tagportal.api.pagination import IdCursorPagination
from tagportal.api.viewsets import RestrictedModelViewSet
from tagportal.errors import NotFound, ValidationFailed
from tagportal.ids import parse_id

from .. import services
from ..models import PersonalTag, Tag, TagGroup
from ..selectors import visible_tag_groups
from .serializers import PersonalTagSerializer, TagGroupSerializer, TagMergeSerializer, TagSerializer

_EMPLOYEE = OpenApiParameter("employee", str, description="以该成员的身份（可见范围与权限）调用")
_UNSET = object()


def _truthy(value) -> bool:
    return str(value).lower() in {"1", "true", "yes", "on"}


class TaxonomyWritesMixin:
    """What tag-group and tag writes share: the 403 for non-managers before anything else, the body
    validated (partially for updates), and a group named in the body that the caller must see."""

    def _validated(self, instance=None) -> dict:
        services.require_taxonomy_manager(self.actor)
        ser = self.get_serializer(instance, data=self.request.data, partial=instance is not None)
        ser.is_valid(raise_exception=True)
        return ser.validated_data

    def _group_or_400(self, pk, *, field: str, message: str, code: str) -> TagGroup:
        group = TagGroup.objects.restrict(self.actor, "view").filter(pk=pk).first()
        if group is None:
            raise ValidationFailed(message, details={field: pk}, code=code)
        return group


class TaxonomyPagination(IdCursorPagination):
    ordering = ("tree_id", "lft", "id")


class TagGroupViewSet(TaxonomyWritesMixin, RestrictedModelViewSet):
    """标签组. Scope `departments` is exact (sub-departments inherit nothing); nested groups narrow."""

    queryset = TagGroup.objects.all()
    serializer_class = TagGroupSerializer
    pagination_class = TaxonomyPagination

    def get_queryset(self):
        qs = super().get_queryset().prefetch_related(
            Prefetch("tags", queryset=Tag.objects.order_by("order", "id")), "departments"
        )
        if self.action == "list":
            if _truthy(self.request.query_params.get("usable", "")):
                qs = qs.filter(pk__in=visible_tag_groups(self.actor.employee).values("pk"))
            parent = self.request.query_params.get("parent")
            if parent not in (None, ""):
                qs = qs.filter(parent__isnull=True) if parent == "null" else qs.filter(parent_id=_int(parent, "parent"))
        return qs

    def _visible_group(self, pk, field: str) -> TagGroup | None:
        if pk is None:
            return None
        return self._group_or_400(pk, field=field, message=_("上级标签组 %(id)s 不存在。") % {"id": pk},
                                  code="unknown_parent")

    def create(self, request, *args, **kwargs):
        data = self._validated()
        group = services.tag_group_create(
            actor=self.actor, name=data["name"], parent=self._visible_group(data.get("parent_id"), "parent"),
            order=data.get("order"), departments=data.get("departments"),
            include_sub_departments=data.get("include_sub_departments", False),
            locked=data.get("locked", False), single_choice=data.get("single_choice", False),
            external_id=data.get("external_id"),
        )
        return Response(self.get_serializer(self._fresh(group)).data, status=status.HTTP_201_CREATED)

    def update(self, request, *args, **kwargs):
        group = self.get_object()
        data = self._validated(group)
        parent = _UNSET
        if "parent_id" in data:
            parent = self._visible_group(data["parent_id"], "parent")
        kwargs = {"parent": parent} if parent is not _UNSET else {}
        group = services.tag_group_update(
            actor=self.actor, group=group, name=data.get("name"), order=data.get("order"),
            departments=data.get("departments"), include_sub_departments=data.get("include_sub_departments", False),
            locked=data.get("locked"), single_choice=data.get("single_choice"), **kwargs,
        )
        return Response(self.get_serializer(self._fresh(group)).data)

    def destroy(self, request, *args, **kwargs):
        group = self.get_object()
        services.tag_group_delete(actor=self.actor, group=group)
        return Response(status=status.HTTP_204_NO_CONTENT)

    def _fresh(self, group):
        return self.get_queryset().get(pk=group.pk)


TagGroupViewSet = extend_schema_view(
    list=extend_schema(parameters=[
        _EMPLOYEE,
        OpenApiParameter("usable", bool, description="只列该成员可见、可打的标签组（标签管理员也按可见范围）"),
        OpenApiParameter("parent", str, description="上级标签组 id，或 null 表示顶层"),
    ]),
)(TagGroupViewSet)


def _int(value, field):
    return parse_id(value, field)  # range-checked before the database (tagportal.ids)


class TagViewSet(TaxonomyWritesMixin, RestrictedModelViewSet):
    """企业标签. Visible exactly when their group is."""

    queryset = Tag.objects.select_related("group")
    serializer_class = TagSerializer
    pagination_class = IdCursorPagination

    def get_queryset(self):
        qs = super().get_queryset()
        if self.action == "list":
            if _truthy(self.request.query_params.get("usable", "")):
                qs = qs.filter(group__in=visible_tag_groups(self.actor.employee).values("pk"))
            group = self.request.query_params.get("group")
            if group not in (None, ""):
                qs = qs.filter(group_id=_int(group, "group"))
        return qs

    def _group(self, pk) -> TagGroup:
        return self._group_or_400(pk, field="group", message=_("标签组 %(id)s 不存在。") % {"id": pk},
                                  code="unknown_group")

    def create(self, request, *args, **kwargs):
        data = self._validated()
        tag = services.tag_create(actor=self.actor, group=self._group(data["group_id"]), name=data["name"],
                                  order=data.get("order"), external_id=data.get("external_id"))
        return Response(self.get_serializer(tag).data, status=status.HTTP_201_CREATED)

    def update(self, request, *args, **kwargs):
        tag = self.get_object()
        data = self._validated(tag)
        group = self._group(data["group_id"]) if "group_id" in data else None
        tag = services.tag_update(actor=self.actor, tag=tag, name=data.get("name"), order=data.get("order"),
                                  group=group)
        return Response(self.get_serializer(tag).data)

    def destroy(self, request, *args, **kwargs):
        services.tag_delete(actor=self.actor, tag=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=TagMergeSerializer, responses={200: TagSerializer})
    @action(detail=True, methods=["post"])
    def merge(self, request, pk=None):
        """Merge this tag into `target`: its customers get the target tag (never twice), this tag goes away."""
        source = self.get_object()
        ser = TagMergeSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        target = Tag.objects.restrict(self.actor, "view").filter(pk=ser.validated_data["target"]).first()
        if target is None:
            raise NotFound("目标标签不存在。")
        moved = services.tag_merge(actor=self.actor, source=source, target=target)
        return Response({"target": TagSerializer(target).data, "moved": moved})


class PersonalTagViewSet(RestrictedModelViewSet):
    """个人标签: the acting employee's own; nobody else sees them (name `employee` for an API client)."""

    queryset = PersonalTag.objects.select_related("owner")
    serializer_class = PersonalTagSerializer
    pagination_class = IdCursorPagination

    def create(self, request, *args, **kwargs):
        ser = self.get_serializer(data=request.data)
        ser.is_valid(raise_exception=True)
        owner = request.data.get("owner") if isinstance(request.data, dict) else None
        if owner and (self.actor.employee is None or owner != self.actor.employee.userid):
            if self.actor.employee is None and Employee.objects.filter(userid=owner).exists():
                raise ValidationFailed("个人标签只能以本人身份创建：请用 employee 指明成员。",
                                       details={"employee": "required"})
            raise ValidationFailed("owner 必须是当前成员。", details={"owner": owner})
        tag = services.personal_tag_create(actor=self.actor, name=ser.validated_data["name"])
        return Response(self.get_serializer(tag).data, status=status.HTTP_201_CREATED)

    def update(self, request, *args, **kwargs):
        tag = self.get_object()
        ser = self.get_serializer(tag, data=request.data, partial=True)
        ser.is_valid(raise_exception=True)
        tag = services.personal_tag_update(actor=self.actor, personal_tag=tag,
                                           name=ser.validated_data.get("name", tag.name))
        return Response(self.get_serializer(tag).data)

    def destroy(self, request, *args, **kwargs):
        services.personal_tag_delete(actor=self.actor, personal_tag=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)
