"""Hooks through which the apps above `customers` react to what happens to customers.

`customers` never imports the apps above it (channels, rules, wecom, insights). They register
handlers here from their own `AppConfig.ready()`, and the customers services call them inside
their own transaction, so a handler's writes commit or roll back with the change that caused them:

    from customers.hooks import register_relation_added_handler

    @register_relation_added_handler
    def apply_channel_tags(*, actor, relation) -> None: ...

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


def register_relation_added_handler(handler: RelationAddedHandler) -> RelationAddedHandler:
    """Register `handler(*, actor, relation)`, called for each new (or returning) follow relation."""
    if handler not in _relation_added_handlers:
        _relation_added_handlers.append(handler)
    return handler


def run_relation_added_handlers(*, actor: Actor, relation: FollowRelation) -> None:
    for handler in _relation_added_handlers:
        handler(actor=actor, relation=relation)
