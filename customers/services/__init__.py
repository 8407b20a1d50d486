"""Writes on customers, by concern: `tagging` (the one tagging service), `followers` (upserts from
CRMs and WeCom, notes), `messages` (chat history ingestion). Import the public names from here."""

from ..models import CustomerType, Gender
from .followers import customer_upsert, follow_relation_default_remark, follow_relation_end, note_create
from .messages import MAX_MESSAGES, IngestResult, messages_ingest
from .tagging import (
    BulkResult,
    TagChange,
    TagOperation,
    can_change_locked,
    customer_tags_replace,
    customer_tags_update,
    customers_tags_add_by_actors,
    customers_tags_bulk_apply,
    customers_tags_bulk_update,
)

__all__ = [
    "BulkResult",
    "CustomerType",
    "Gender",
    "IngestResult",
    "MAX_MESSAGES",
    "TagChange",
    "TagOperation",
    "can_change_locked",
    "customer_tags_replace",
    "customer_tags_update",
    "customer_upsert",
    "follow_relation_default_remark",
    "customers_tags_add_by_actors",
    "customers_tags_bulk_apply",
    "customers_tags_bulk_update",
    "follow_relation_default_remark",
    "follow_relation_end",
    "messages_ingest",
    "note_create",
]
