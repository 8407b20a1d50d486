"""Serialise tree writes (django-mptt is not safe under concurrent edits).

On PostgreSQL a transaction-level advisory lock per tree; on SQLite the database lock
already serialises writers. Must be taken inside `transaction.atomic()`.
"""

from __future__ import annotations

import zlib
from contextlib import contextmanager

from django.db import connection

ADVISORY_LOCK_KEYS = {"department": 1_001, "tag_group": 1_002}


@contextmanager
def tree_lock(tree: str):
    key = ADVISORY_LOCK_KEYS.get(tree) or zlib.crc32(tree.encode())
    if not connection.in_atomic_block:
        raise RuntimeError("tree_lock() must be taken inside transaction.atomic()")
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [key])
    yield
