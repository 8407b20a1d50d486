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

The customers' own taggings (`customers.Tagging`, audited in `customers.TagEvent`) are handled
by `customer_taggings_merge` / `customer_taggings_delete` below, registered by default. They look
the models up with `apps.get_model` at call time (no import of `customers`), so `tags` still
works, and is testable, in a project without the customers app.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.apps import apps

if TYPE_CHECKING:
    from org.actors import Actor

    from .models import Tag

TagMergeHandler = Callable[..., int]
TagDeleteHandler = Callable[..., int]
TaxonomyChangedHandler = Callable[..., None]

_merge_handlers: list[TagMergeHandler] = []
_delete_handlers: list[TagDeleteHandler] = []
_taxonomy_handlers: list[TaxonomyChangedHandler] = []


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


# ------------------------------------------------------------------ customers' taggings (default)


def _customers_models():
    if not apps.is_installed("customers"):
        return None
    return apps.get_model("customers", "Tagging"), apps.get_model("customers", "TagEvent")


def _audit_source(actor: Actor) -> str:
    # TagSource values of customers: an API client's change is "api", a person's "manual";
    # automation may name its own (the WeCom connection: "wecom").
    if actor.source:
        return actor.source
    return "api" if actor.api_client is not None else "manual"


def _event_kwargs(actor: Actor) -> dict:
    return {
        "actor_employee": actor.employee,
        "actor_client": actor.api_client,
        "actor_label": str(actor)[:100],
        "source": _audit_source(actor),
    }


@register_tag_merge_handler
def customer_taggings_merge(*, actor: Actor, source: Tag, target: Tag) -> int:
    """Re-point `source`'s taggings to `target` without duplicates; audit each change."""
    models = _customers_models()
    if models is None:
        return 0
    Tagging, TagEvent = models
    target_customers = Tagging.objects.filter(tag=target).values("customer_id")
    source_rows = Tagging.objects.filter(tag=source)
    moving = list(source_rows.exclude(customer_id__in=target_customers).values_list("customer_id", flat=True))
    already = list(
        Tagging.objects.filter(tag=source, customer_id__in=target_customers).values_list("customer_id", flat=True)
    )
    common = _event_kwargs(actor)
    events = [TagEvent(customer_id=c, tag=source, tag_name=source.name, action="remove", **common)
              for c in moving + already]
    events += [TagEvent(customer_id=c, tag=target, tag_name=target.name, action="add", **common) for c in moving]
    TagEvent.objects.bulk_create(events, batch_size=2000)
    Tagging.objects.filter(tag=source, customer_id__in=moving).update(tag=target)
    Tagging.objects.filter(tag=source).delete()
    return len(moving) + len(already)


@register_tag_delete_handler
def customer_taggings_delete(*, actor: Actor, tags: Sequence[Tag]) -> int:
    """Audit the removal of deleted tags from their customers (the rows cascade away)."""
    models = _customers_models()
    if models is None or not tags:
        return 0
    Tagging, TagEvent = models
    names = {t.pk: t.name for t in tags}
    pairs = list(Tagging.objects.filter(tag_id__in=list(names)).values_list("customer_id", "tag_id"))
    common = _event_kwargs(actor)
    TagEvent.objects.bulk_create(
        [TagEvent(customer_id=c, tag_id=t, tag_name=names[t], action="remove", **common) for c, t in pairs],
        batch_size=2000,
    )
    Tagging.objects.filter(tag_id__in=list(names)).delete()
    return len(pairs)


def personal_taggings_delete(*, actor: Actor, personal_tag) -> int:
    """A personal tag is being deleted: audit its removal from every customer carrying it (source
    manual, the owner acting), then delete those taggings. Two statements whatever the number."""
    if not apps.is_installed("customers"):
        return 0
    PersonalTagging = apps.get_model("customers", "PersonalTagging")
    TagEvent = apps.get_model("customers", "TagEvent")
    rows = PersonalTagging.objects.filter(personal_tag_id=personal_tag.pk)
    customer_ids = list(rows.values_list("customer_id", flat=True))
    common = {**_event_kwargs(actor), "source": "manual"}
    TagEvent.objects.bulk_create(
        [TagEvent(customer_id=c, personal_tag_id=personal_tag.pk, tag_name=personal_tag.name[:64], action="remove",
                  **common) for c in customer_ids],
        batch_size=5000,
    )
    rows.delete()
    return len(customer_ids)


def single_choice_conflicts(*, group_tag_ids: Sequence[int], incoming_tag_ids: Sequence[int]) -> int:
    """Rule 7 check before a taxonomy change: how many customers would end up with two tags of one
    single-choice group, when the tags `incoming_tag_ids` join (or are merged into) the group whose
    tags are `group_tag_ids`. Counts customers holding more than one of the union (0 without the
    customers app)."""
    models = _customers_models()
    if models is None:
        return 0
    from django.db.models import Count

    ids = sorted(set(group_tag_ids) | set(incoming_tag_ids))
    if len(ids) < 2:
        return 0
    Tagging = models[0]
    return (
        Tagging.objects.filter(tag_id__in=ids)
        .values("customer_id")
        .annotate(n=Count("tag_id"))
        .filter(n__gt=1)
        .count()
    )


def tagging_counts(tag_ids: Sequence[int]) -> dict[int, int]:
    """How many customers carry each tag (for delete confirmations); 0 without the customers app."""
    models = _customers_models()
    if models is None or not tag_ids:
        return {}
    from django.db.models import Count

    Tagging = models[0]
    rows = Tagging.objects.filter(tag_id__in=list(tag_ids)).values("tag_id").annotate(n=Count("id"))
    return {r["tag_id"]: r["n"] for r in rows}
