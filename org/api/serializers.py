"""Serializers of `departments/` and `employees/` (fields fixed by API.md). Validation of shape
only; the rules (rights, cycles, role grants) live in `org.services`."""

from __future__ import annotations

from rest_framework import serializers

from ..models import Department, Employee, EmployeeStatus, Role


class DepartmentSerializer(serializers.ModelSerializer):
    parent = serializers.PrimaryKeyRelatedField(queryset=Department.objects.all(), allow_null=True, required=False)
    order = serializers.IntegerField(required=False)
    external_id = serializers.CharField(max_length=64, allow_null=True, allow_blank=True, required=False)

    class Meta:
        model = Department
        fields = ["id", "name", "parent", "order", "external_id", "level"]
        read_only_fields = ["id", "level"]


class EmployeeSerializer(serializers.ModelSerializer):
    departments = serializers.PrimaryKeyRelatedField(queryset=Department.objects.all(), many=True, required=False)
    managed_departments = serializers.PrimaryKeyRelatedField(
        queryset=Department.objects.all(), many=True, required=False
    )
    roles = serializers.ListField(child=serializers.ChoiceField(choices=Role.values), required=False)
    status = serializers.ChoiceField(choices=EmployeeStatus.values, required=False)
    password = serializers.CharField(write_only=True, required=False, min_length=8, style={"input_type": "password"})

    class Meta:
        model = Employee
        fields = ["id", "userid", "name", "departments", "managed_departments", "roles", "status", "departed_at",
                  "password"]
        read_only_fields = ["id", "departed_at"]
        extra_kwargs = {"userid": {"validators": []}}  # uniqueness is the service's, answered as 400 too

    def to_representation(self, instance):
        data = super().to_representation(instance)
        data["roles"] = sorted(instance.roles)
        return data
