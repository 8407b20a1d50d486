"""DRF fields for integers from outside, range-checked before the database (see `tagportal.ids`)."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from tagportal.ids import MAX_ID, MAX_INT, MIN_INT, as_id


class IdField(serializers.IntegerField):
    """An object id: 1 … 2**63 - 1; booleans, floats and digit strings with signs are refused."""

    default_error_messages = {"invalid": _("必须是 1 到 {max_id} 之间的整数 id。")}

    def __init__(self, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        number = as_id(data)
        if number is None:
            self.fail("invalid", max_id=MAX_ID)
        return number


class IdListField(serializers.ListField):
    """A list of ids."""

    child = IdField()


class BoundedIntegerField(serializers.IntegerField):
    """Any integer the database can store (64-bit signed unless narrower bounds are given);
    booleans and floats with a fraction are refused."""

    def __init__(self, **kwargs):
        kwargs.setdefault("min_value", MIN_INT)
        kwargs.setdefault("max_value", MAX_INT)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if isinstance(data, bool):
            self.fail("invalid")
        return super().to_internal_value(data)
