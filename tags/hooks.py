"""Hooks through which apps that hold references to tags take part in tag merges and deletes.

The dependency direction is `org` ← `tags` ← `customers` (← automation): `tags` never imports
the apps above it. Yet merging tag A into B must re-point every customer carrying A, and
deleting a tag must audit the removals. So `tags.services` calls the handlers registered here,
inside its own transaction, and each app above registers what it owns:

    from tags.hooks import register_tag_merge_handler

    @register_tag_merge_handler
    def move_rule_tags(*, actor, source, target) -> int: ...

Handlers are keyword-only `(*, actor, source, target)` for merges and `(*, actor, tags)` for
deletes, must be set-based (no query per customer) and may raise a `DomainError` to abort the
whole operation (nothing is changed then).

Taxonomy-changed handlers `(*, actor, change)` hear about every definition change (a group or a
tag created, renamed, reordered, moved or deleted), again inside the service's transaction, so
what they record commits or rolls back with the change (the WeCom connection queues its
corp-tag push this way). `change` is a `TaxonomyChange`; for deletes it carries the objects as
they were (with their `external_id`), read before the rows went away.

Personal-tag delete handlers `(*, actor, personal_tag) -> int` audit and remove a personal tag's
uses before it goes. Tag counters answer two questions the tags services ask before a change:
`single_choice_conflicts(*, group_tag_ids, incoming_tag_ids) -> int` (customers that would hold two
tags of one single-choice group) and `tagging_counts(tag_ids) -> {tag_id: n}` (for delete
confirmations). The customers app registers all of these for its taggings (`customers/taxonomy_hooks.py`,
from `CustomersConfig.ready()`); without it they answer 0 and do nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from org.actors import Actor

    from .models import Tag

TagMergeHandler = Callable[..., int]
TagDeleteHandler = Callable[..., int]
TaxonomyChangedHandler = Callable[..., None]

_merge_handlers: list[TagMergeHandler] = []
_delete_handlers: list[TagDeleteHandler] = []
_taxonomy_handlers: list[TaxonomyChangedHandler] = []
_personal_tag_delete_handlers: list[Callable[..., int]] = []
_tag_counters: list = []


@dataclass(frozen=True)
class TaxonomyChange:
    """One change of the taxonomy's definitions, as told to taxonomy-changed handlers.

    `kind` is "group" or "tag"; `action` one of "created", "updated" (name or order), "moved"
    (a group under another parent, a tag into another group) or "deleted". `objects` are the
    groups or tags concerned (for a deleted group: the group, its sub-groups and all their tags,
    groups first; for "moved" the object after the move, `previous_group_id` the tag's old group).
    """

    kind: str
    action: str
    objects: tuple = ()
    previous_group_id: int | None = None


def register_tag_merge_handler(handler: TagMergeHandler) -> TagMergeHandler:
    """Register `handler(*, actor, source, target) -> int` (how many references it moved)."""
    if handler not in _merge_handlers:
        _merge_handlers.append(handler)
    return handler


def register_tag_delete_handler(handler: TagDeleteHandler) -> TagDeleteHandler:
    """Register `handler(*, actor, tags) -> int`, called before the tags are deleted."""
    if handler not in _delete_handlers:
        _delete_handlers.append(handler)
    return handler


def register_taxonomy_changed_handler(handler: TaxonomyChangedHandler) -> TaxonomyChangedHandler:
    """Register `handler(*, actor, change)`, called by the tags services inside their transaction."""
    if handler not in _taxonomy_handlers:
        _taxonomy_handlers.append(handler)
    return handler


def run_taxonomy_changed_handlers(*, actor: Actor, kind: str, action: str, objects: Sequence,
                                  previous_group_id: int | None = None) -> None:
    if not _taxonomy_handlers or not objects:
        return
    change = TaxonomyChange(kind=kind, action=action, objects=tuple(objects), previous_group_id=previous_group_id)
    for handler in _taxonomy_handlers:
        handler(actor=actor, change=change)


def run_tag_merge_handlers(*, actor: Actor, source: Tag, target: Tag) -> int:
    return sum(handler(actor=actor, source=source, target=target) or 0 for handler in _merge_handlers)


def run_tag_delete_handlers(*, actor: Actor, tags: Sequence[Tag]) -> int:
    return sum(handler(actor=actor, tags=tags) or 0 for handler in _delete_handlers)


# ------------------------------------------------------------------ personal tags and counts


def register_personal_tag_delete_handler(handler: Callable[..., int]) -> Callable[..., int]:
    """Register `handler(*, actor, personal_tag) -> int`, called before a personal tag is deleted."""
    if handler not in _personal_tag_delete_handlers:
        _personal_tag_delete_handlers.append(handler)
    return handler


def personal_taggings_delete(*, actor: Actor, personal_tag) -> int:
    return sum(handler(actor=actor, personal_tag=personal_tag) or 0 for handler in _personal_tag_delete_handlers)


def register_tag_counter(counter):
    """Register an object with `single_choice_conflicts(*, group_tag_ids, incoming_tag_ids) -> int` and
    `tagging_counts(tag_ids) -> dict[int, int]` for the references an app holds to tags."""
    if counter not in _tag_counters:
        _tag_counters.append(counter)
    return counter


def single_choice_conflicts(*, group_tag_ids: Sequence[int], incoming_tag_ids: Sequence[int]) -> int:
    """Rule 7 check before a taxonomy change: how many customers would end up with two tags of one
    single-choice group when the tags `incoming_tag_ids` join (or are merged into) the group whose tags
    are `group_tag_ids` (0 without a registered counter)."""
    return sum(c.single_choice_conflicts(group_tag_ids=group_tag_ids, incoming_tag_ids=incoming_tag_ids)
               for c in _tag_counters)


def tagging_counts(tag_ids: Sequence[int]) -> dict[int, int]:
    """How many customers carry each tag (for delete confirmations); empty without a registered counter."""
    totals: dict[int, int] = {}
    for counter in _tag_counters:
        for tag_id, n in counter.tagging_counts(list(tag_ids)).items():
            totals[tag_id] = totals.get(tag_id, 0) + n
    return totals
