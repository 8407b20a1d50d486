"""Integers from outside (ids in paths, query strings, bodies, filters, bulk items), checked before
they reach the database.

SQLite stores at most a signed 64-bit integer and Python's sqlite3 raises `OverflowError` beyond it;
PostgreSQL's `bigint` has the same bound. Every id column is a `BigAutoField`, so a valid id is
1 … 2**63 - 1. Out of range is bad input: a 400 naming the field (or a 404 for a path id), on both
databases alike. Every app parses ids through these helpers (and `tagportal.api.fields` for DRF).
"""

from __future__ import annotations

from collections.abc import Iterable

from django.utils.translation import gettext as _

from tagportal.errors import ValidationFailed

MAX_ID = 2**63 - 1
MAX_INT = 2**63 - 1  # any integer column (SQLite INTEGER, PostgreSQL bigint)
MIN_INT = -(2**63)


def as_id(value) -> int | None:
    """`value` as an id when it is one (a positive int within range, or such a string of ASCII
    digits), else None. Booleans, floats, signs, spaces inside, full-width digits: not ids."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        number = value
    elif isinstance(value, str):
        text = value.strip()
        if not (text.isascii() and text.isdigit()) or len(text) > 19:
            return None
        number = int(text)
    else:
        return None
    return number if 1 <= number <= MAX_ID else None


def is_id(value) -> bool:
    return as_id(value) is not None


def parse_id(value, field: str) -> int:
    """One id, or `ValidationFailed` naming `field`."""
    number = as_id(value)
    if number is None:
        raise ValidationFailed(
            _("“%(field)s”必须是 1 到 %(max)s 之间的整数 id。") % {"field": field, "max": MAX_ID},
            details={field: _shown(value)},
        )
    return number


def parse_id_list(value, field: str, *, separator: str = ",") -> tuple[int, ...]:
    """A list of ids (a JSON list, or a comma-separated string), de-duplicated in order, or
    `ValidationFailed` naming `field` and the bad values."""
    ids, bad = id_list_errors(value, separator=separator)
    if bad:
        raise ValidationFailed(
            _("“%(field)s”必须是 id 列表（1 到 %(max)s 之间的整数）。") % {"field": field, "max": MAX_ID},
            details={field: bad},
        )
    return ids


def id_list_errors(value, *, separator: str = ",") -> tuple[tuple[int, ...], list]:
    """(the good ids, the bad values) of a list or a separated string; for callers collecting
    several errors before answering."""
    if isinstance(value, str):
        parts: Iterable = [p for p in (part.strip() for part in value.split(separator)) if p]
    elif isinstance(value, list | tuple):
        parts = value
    else:
        return (), [_shown(value)]
    ids, bad = [], []
    for part in parts:
        number = as_id(part)
        if number is None:
            bad.append(_shown(part))
        else:
            ids.append(number)
    return tuple(dict.fromkeys(ids)), bad


def int_in_range(value, *, lo: int = MIN_INT, hi: int = MAX_INT) -> bool:
    """True when `value` is an int (not a bool) the database can store between `lo` and `hi`."""
    return isinstance(value, int) and not isinstance(value, bool) and lo <= value <= hi


def _shown(value):
    """The bad value as the error details echo it: short, JSON-safe, without NUL."""
    if isinstance(value, bool | int | float) or value is None:
        text = repr(value) if isinstance(value, float) else value
        if isinstance(text, int) and not isinstance(text, bool) and abs(text) > MAX_INT:
            return str(text)[:40]
        return text
    return str(value).replace("\x00", "\\x00")[:40]
