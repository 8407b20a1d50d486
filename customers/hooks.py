"""Hooks through which the apps above `customers` react to what happens to customers.

`customers` never imports the apps above it (channels, rules, wecom, insights). They register
handlers here from their own `AppConfig.ready()`, and the customers services call them inside
their own transaction, so a handler's writes commit or roll back with the change that caused them:

    from customers.hooks import register_relation_added_handler

    @register_relation_added_handler
    def apply_channel_tags(*, actor, relation) -> None: ...

Transfer-started handlers `(*, actor, transfer)` run at the end of `transfer_start`, in its
transaction, once the transfer and its items exist (the WeCom connection hands the customers over
in WeCom too). Transfer-column providers `(transfer, items) -> (title, {item_id: text}) | None` add a
column to a transfer's result page (WeCom's status beside ours).

Relation-added handlers get `(*, actor, relation)` for every follow relation that is *new*: created,
or active again after it had ended (deleted by the employee, lost when the customer removed the
employee, or transferred away). Re-posting a relation that is already active calls nothing. A
handler may raise a `DomainError` to abort the whole change.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from org.actors import Actor

    from .models import FollowRelation

RelationAddedHandler = Callable[..., None]

_relation_added_handlers: list[RelationAddedHandler] = []
_transfer_started_handlers: list[Callable[..., None]] = []
_transfer_column_providers: list[Callable] = []


def register_relation_added_handler(handler: RelationAddedHandler) -> RelationAddedHandler:
    """Register `handler(*, actor, relation)`, called for each new (or returning) follow relation."""
    if handler not in _relation_added_handlers:
        _relation_added_handlers.append(handler)
    return handler


def run_relation_added_handlers(*, actor: Actor, relation: FollowRelation) -> None:
    for handler in _relation_added_handlers:
        handler(actor=actor, relation=relation)


def register_transfer_started_handler(handler: Callable[..., None]) -> Callable[..., None]:
    """Register `handler(*, actor, transfer)`, called by `transfer_start` inside its transaction."""
    if handler not in _transfer_started_handlers:
        _transfer_started_handlers.append(handler)
    return handler


def run_transfer_started_handlers(*, actor: Actor, transfer) -> None:
    for handler in _transfer_started_handlers:
        handler(actor=actor, transfer=transfer)


def register_transfer_column(provider: Callable) -> Callable:
    """Register `provider(transfer, items) -> (title, {item_id: text}) | None` for the result page."""
    if provider not in _transfer_column_providers:
        _transfer_column_providers.append(provider)
    return provider


def transfer_columns(transfer, items) -> list[tuple[str, dict]]:
    """The extra columns of a transfer's result page for these items (providers answering None skipped)."""
    columns = []
    for provider in _transfer_column_providers:
        column = provider(transfer, items)
        if column:
            columns.append(column)
    return columns


# ---------------------------------------------------------------- the mobile sidebar (聊天工具栏)

_sidebar_integrations: list = []


def register_sidebar_integration(integration):
    """Register an object that connects the mobile sidebar portrait (`customers.sidebar`) to a chat
    client (WeCom's 聊天工具栏). Both methods may return None to mean "not here, not now":

    - `login(request, next_url) -> HttpResponse | None`: for a visitor who is not logged in, a
      response that logs them in through the client (e.g. a redirect to WeCom OAuth), else None and
      the portal's usual login form is used.
    - `page_context(request) -> dict | None`: what the sidebar's entry page needs to learn the current
      customer in the client: `{"script_url": ..., "agent_config": {...}}` (see the entry template).
    """
    if integration not in _sidebar_integrations:
        _sidebar_integrations.append(integration)
    return integration


def sidebar_integrations() -> list:
    return list(_sidebar_integrations)


# ---------------------------------------------------------------- 待分配离职成员 (WeCom's unassigned list)

_unassigned_sources: list = []


def register_unassigned_source(source):
    """Register `source() -> {userid: number of customers} | None`: the customers a chat client still
    lists as waiting for 离职继承 per departed employee (WeCom's `get_unassigned_list`), shown beside
    the portal's own count on the 待分配离职成员 page. None means "not connected": no column."""
    if source not in _unassigned_sources:
        _unassigned_sources.append(source)
    return source


def unassigned_counts() -> dict[str, int] | None:
    """The sources' counts added up, or None when no source answers."""
    total: dict[str, int] | None = None
    for source in _unassigned_sources:
        counts = source()
        if counts is None:
            continue
        total = total or {}
        for userid, n in counts.items():
            total[userid] = total.get(userid, 0) + n
    return total


# ---------------------------------------------------------------- messages ingested

MessagesAddedHandler = Callable[..., None]

_messages_added_handlers: list[MessagesAddedHandler] = []


def register_messages_added_handler(handler: MessagesAddedHandler) -> MessagesAddedHandler:
    """Register `handler(*, message_ids)`, called by `messages_ingest` inside its transaction with the
    ids of the *new* text messages (duplicates and non-text messages left out); keyword rules queue
    them for matching this way."""
    if handler not in _messages_added_handlers:
        _messages_added_handlers.append(handler)
    return handler


def run_messages_added_handlers(*, message_ids: list[int]) -> None:
    if not message_ids:
        return
    for handler in _messages_added_handlers:
        handler(message_ids=message_ids)
