"""Read shapes of `customers/` and its sub-resources (API.md). Writes go through services; the
view reads the request body and hands it to them."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from ..models import Customer, Message, Note


class FollowerSerializer(serializers.Serializer):
    """One follow relation as `customers/` shows it: the employee's userid and their own remark etc."""

    employee = serializers.CharField(source="employee.userid")
    name = serializers.CharField(source="employee.name")
    remark = serializers.CharField()
    description = serializers.CharField()
    added_at = serializers.DateTimeField()
    add_way = serializers.IntegerField()
    state = serializers.CharField()


_DATETIME = serializers.DateTimeField()


class CustomerSerializer(serializers.ModelSerializer):
    """A customer as the caller sees it: `tags` are the enterprise tags they may see, `personal_tags`
    the acting employee's own. Expects the queryset prepared by `selectors.with_card_data`."""

    followers = serializers.SerializerMethodField()
    tags = serializers.SerializerMethodField()
    personal_tags = serializers.SerializerMethodField()

    class Meta:
        model = Customer
        fields = [
            "id", "external_userid", "name", "corp_name", "type", "gender", "avatar", "crm_fields",
            "followers", "tags", "personal_tags", "created_at", "updated_at",
        ]

    @extend_schema_field(FollowerSerializer(many=True))
    def get_followers(self, customer) -> list[dict]:
        # Plain dicts (same shape as FollowerSerializer): a nested serializer per row costs more than the SQL.
        return [
            {
                "employee": r.employee.userid,
                "name": r.employee.name,
                "remark": r.remark,
                "description": r.description,
                "added_at": _DATETIME.to_representation(r.added_at),
                "add_way": r.add_way,
                "state": r.state,
            }
            for r in customer.active_followers
        ]

    @extend_schema_field(serializers.ListField(child=serializers.IntegerField()))
    def get_tags(self, customer) -> list[int]:
        return sorted(t.tag_id for t in customer.visible_taggings)

    @extend_schema_field(serializers.ListField(child=serializers.IntegerField()))
    def get_personal_tags(self, customer) -> list[int]:
        return sorted(t.personal_tag_id for t in customer.own_personal_taggings)


class CustomerUpsertSerializer(serializers.Serializer):
    """`POST customers/` body (documentation only: `customer_upsert` validates)."""

    external_userid = serializers.CharField(max_length=64)
    name = serializers.CharField(required=False)
    corp_name = serializers.CharField(required=False)
    type = serializers.IntegerField(required=False)
    gender = serializers.IntegerField(required=False)
    avatar = serializers.URLField(required=False)
    crm_fields = serializers.DictField(required=False)
    followers = serializers.ListField(child=serializers.DictField(), required=False)
    employee = serializers.CharField(required=False)


class CustomerTagsSerializer(serializers.Serializer):
    """`POST customers/{id}/tags/` body."""

    add = serializers.ListField(child=serializers.IntegerField(), required=False)
    remove = serializers.ListField(child=serializers.IntegerField(), required=False)
    personal_add = serializers.ListField(child=serializers.IntegerField(), required=False)
    personal_remove = serializers.ListField(child=serializers.IntegerField(), required=False)
    employee = serializers.CharField(required=False)


class CustomerTagsResultSerializer(serializers.Serializer):
    tags = serializers.ListField(child=serializers.IntegerField())
    personal_tags = serializers.ListField(child=serializers.IntegerField())
    added = serializers.ListField(child=serializers.IntegerField())
    removed = serializers.ListField(child=serializers.IntegerField())


class NoteSerializer(serializers.ModelSerializer):
    author = serializers.CharField(source="author.userid", read_only=True)
    author_name = serializers.CharField(source="author.name", read_only=True)

    class Meta:
        model = Note
        fields = ["id", "author", "author_name", "text", "created_at"]
        read_only_fields = ["id", "created_at"]


class MessageSerializer(serializers.ModelSerializer):
    employee = serializers.CharField(source="employee.userid")

    class Meta:
        model = Message
        fields = ["msgid", "employee", "direction", "content", "sent_at"]
