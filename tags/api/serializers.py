"""Serializers of `tag-groups/`, `tags/` and `personal-tags/` (API.md). Input only; writes go through services."""

from __future__ import annotations

from rest_framework import serializers

from tagportal.api.fields import IdField

from ..models import PersonalTag, Tag, TagGroup


class TagBriefSerializer(serializers.ModelSerializer):
    class Meta:
        model = Tag
        fields = ["id", "name", "order"]


class IdListField(serializers.ListField):
    """Ids in, ids out (reads a related manager; uses the prefetch cache)."""

    child = IdField()  # range-checked before the database (tagportal.ids)

    def to_representation(self, value):
        return sorted(obj.pk for obj in value.all())


class TagGroupSerializer(serializers.ModelSerializer):
    """A tag group with its scope and its tags (`tags` read-only: `{id, name, order}`).

    Ids are checked by the view and the services (unknown parent or department: 400 with a message).
    """

    name = serializers.CharField(max_length=200, allow_blank=True, trim_whitespace=False)
    parent = IdField(source="parent_id", allow_null=True, required=False)
    level = serializers.IntegerField(read_only=True)
    departments = IdListField(
        required=False,
        help_text="部门 id 列表；空表示全员可见（下级部门不继承，除非 include_sub_departments）。",
    )
    include_sub_departments = serializers.BooleanField(
        write_only=True, required=False, default=False, help_text="同时加入所列部门的全部下级部门（明确存储）。"
    )
    tags = serializers.SerializerMethodField()

    class Meta:
        model = TagGroup
        fields = ["id", "name", "parent", "order", "level", "departments", "include_sub_departments", "locked",
                  "single_choice", "tags", "external_id"]
        extra_kwargs = {"order": {"required": False}, "external_id": {"required": False}}

    def get_tags(self, group) -> list[dict]:
        tags = sorted(group.tags.all(), key=lambda t: (t.order, t.pk))
        return TagBriefSerializer(tags, many=True).data


class TagSerializer(serializers.ModelSerializer):
    group = IdField(source="group_id")
    name = serializers.CharField(max_length=200, allow_blank=True, trim_whitespace=False)

    class Meta:
        model = Tag
        fields = ["id", "group", "name", "order", "external_id"]
        extra_kwargs = {"order": {"required": False}, "external_id": {"required": False}}


class PersonalTagSerializer(serializers.ModelSerializer):
    owner = serializers.SlugRelatedField(slug_field="userid", read_only=True)
    name = serializers.CharField(max_length=200, allow_blank=True, trim_whitespace=False)

    class Meta:
        model = PersonalTag
        fields = ["id", "owner", "name", "created_at"]
        read_only_fields = ["created_at"]


class TagMergeSerializer(serializers.Serializer):
    target = IdField(help_text="合并到的标签 id")
