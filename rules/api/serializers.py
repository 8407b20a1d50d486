"""Read shapes of `keyword-rules/` and its hit log (API.md "Messages and keyword rules"). Writes go
through `rules.services`; views hand them the request body."""

from __future__ import annotations

from rest_framework import serializers

from ..models import KeywordRule, RuleHit
from ..selectors import reason_display


class KeywordRuleSerializer(serializers.ModelSerializer):
    tags = serializers.SerializerMethodField()
    exclude_tags = serializers.SerializerMethodField()
    sample_customers = serializers.SerializerMethodField()
    employees = serializers.SerializerMethodField()
    departments = serializers.SerializerMethodField()
    status_display = serializers.CharField(source="get_status_display", read_only=True)

    class Meta:
        model = KeywordRule
        fields = ["id", "name", "keywords", "exclude_keywords", "tags", "exclude_tags", "directions", "min_hits",
                  "window_days", "status", "status_display", "sample_customers", "employees", "departments",
                  "hit_count", "tagged_count", "created_at", "updated_at"]
        read_only_fields = fields

    def get_tags(self, rule) -> list[int]:
        return sorted(t.pk for t in rule.tags.all())

    def get_exclude_tags(self, rule) -> list[int]:
        return sorted(t.pk for t in rule.exclude_tags.all())

    def get_sample_customers(self, rule) -> list[int]:
        return sorted(c.pk for c in rule.sample_customers.all())

    def get_employees(self, rule) -> list[str]:
        return sorted(e.userid for e in rule.employees.all())

    def get_departments(self, rule) -> list[int]:
        return sorted(d.pk for d in rule.departments.all())


class RuleHitSerializer(serializers.ModelSerializer):
    customer = serializers.IntegerField(source="customer_id")
    msgid = serializers.CharField(source="message.msgid", default=None)
    reason_display = serializers.SerializerMethodField()

    class Meta:
        model = RuleHit
        fields = ["id", "customer", "msgid", "keyword", "outcome", "reason", "reason_display", "sent_at",
                  "created_at"]
        read_only_fields = fields

    def get_reason_display(self, hit) -> str:
        return reason_display(hit.reason) if hit.reason else ""
