"""Shapes of `channel-codes/` (API.md "Channel codes"). Writes go through `channels.services`; the
write serializer only documents the body for the OpenAPI schema."""

from __future__ import annotations

from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from ..models import ChannelCode, Rotation


class ChannelCodeSerializer(serializers.ModelSerializer):
    """A code: API.md's fixed fields (`id`, `name`, `state`, `employees`, `backup_employees`,
    `daily_limit`, `tags`, `remark_template`, `welcome_message`, `skip_verify`, `enabled`,
    `added_count`, `qr`) and more (`added_today`, `rotation`, `working_hours`, `department`,
    `description`, `landing_url`, WeCom's `config_id` / `qr_code`). Expects `selectors.with_counts`."""

    employees = serializers.SerializerMethodField()
    backup_employees = serializers.SerializerMethodField()
    tags = serializers.SerializerMethodField()
    added_count = serializers.IntegerField(source="added_total", read_only=True)
    added_today = serializers.IntegerField(read_only=True)
    qr = serializers.SerializerMethodField()
    landing_url = serializers.SerializerMethodField()
    owner = serializers.SerializerMethodField()

    class Meta:
        model = ChannelCode
        fields = [
            "id", "name", "state", "employees", "backup_employees", "daily_limit", "tags", "remark_template",
            "welcome_message", "skip_verify", "enabled", "added_count", "added_today", "qr", "rotation",
            "working_hours", "department", "description", "owner", "landing_url", "config_id", "qr_code",
            "created_at", "updated_at",
        ]

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_employees(self, code) -> list[str]:
        return sorted(e.userid for e in code.employees.all())

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_backup_employees(self, code) -> list[str]:
        return sorted(e.userid for e in code.backup_employees.all())

    @extend_schema_field(serializers.ListField(child=serializers.IntegerField()))
    def get_tags(self, code) -> list[int]:
        return sorted(t.pk for t in code.tags.all())

    def _url(self, path: str) -> str:
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request is not None else path

    @extend_schema_field(serializers.DictField(child=serializers.URLField()))
    def get_qr(self, code) -> dict:
        return {
            "png": self._url(reverse("channel-code-qr-png", args=[code.pk])),
            "svg": self._url(reverse("channel-code-qr-svg", args=[code.pk])),
        }

    def get_landing_url(self, code) -> str:
        return self._url(reverse("channels:landing", args=[code.state]))

    def get_owner(self, code) -> str | None:
        return code.owner.userid if code.owner_id else None


class ChannelCodeWriteSerializer(serializers.Serializer):
    """The body of `POST` / `PATCH channel-codes/` (documentation; the service validates)."""

    name = serializers.CharField(max_length=30)
    state = serializers.CharField(max_length=30, required=False)
    employees = serializers.ListField(child=serializers.CharField())
    backup_employees = serializers.ListField(child=serializers.CharField(), required=False)
    daily_limit = serializers.IntegerField(required=False, allow_null=True)
    rotation = serializers.ChoiceField(choices=Rotation.choices, required=False)
    working_hours = serializers.DictField(required=False, help_text='{"0": [["09:00", "18:00"]]}, 0 = Monday')
    tags = serializers.ListField(child=serializers.IntegerField(), required=False)
    remark_template = serializers.CharField(required=False, allow_blank=True)
    description = serializers.CharField(required=False, allow_blank=True)
    welcome_message = serializers.CharField(required=False, allow_blank=True)
    skip_verify = serializers.BooleanField(required=False)
    enabled = serializers.BooleanField(required=False)
    department = serializers.IntegerField(required=False, allow_null=True)


class StatsDaySerializer(serializers.Serializer):
    date = serializers.DateField()
    added = serializers.IntegerField()
    lost = serializers.IntegerField()
    still_followed = serializers.IntegerField()


class StatsEmployeeSerializer(serializers.Serializer):
    employee = serializers.CharField()
    name = serializers.CharField()
    added = serializers.IntegerField()
    lost = serializers.IntegerField()
    still_followed = serializers.IntegerField()


class StatsSerializer(serializers.Serializer):
    days = StatsDaySerializer(many=True)
    employees = StatsEmployeeSerializer(many=True)
    totals = serializers.DictField(child=serializers.IntegerField())
    customers_url = serializers.CharField()
