"""Path converters: `<id:pk>` matches an object id within the database's range (tagportal.ids);
a longer number is no match, hence a 404, never an overflow."""

from __future__ import annotations

from django.urls import register_converter

from tagportal.ids import MAX_ID


class IdConverter:
    regex = "[0-9]{1,19}"

    def to_python(self, value: str) -> int:
        number = int(value)
        if not 1 <= number <= MAX_ID:
            raise ValueError("id out of range")  # the URL resolver moves on: 404
        return number

    def to_url(self, value) -> str:
        return str(int(value))


def register() -> None:
    register_converter(IdConverter, "id")
