"""The customers app's part in the taxonomy's hooks (`tags/hooks.py`): its taggings follow tag merges
and deletes (audited), personal tags' uses are audited before they go, and the tags services learn
how many customers a change concerns. Registered from `CustomersConfig.ready()`, so `tags` never
names this app's models.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import SimpleNamespace

from django.db.models import Count

from org.actors import Actor
from tags import hooks
from tags.models import Tag

from .models import PersonalTagging, TagEvent, Tagging


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


def customer_taggings_merge(*, actor: Actor, source: Tag, target: Tag) -> int:
    """Re-point `source`'s taggings to `target` without duplicates; audit each change."""
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


def customer_taggings_delete(*, actor: Actor, tags: Sequence[Tag]) -> int:
    """Audit the removal of deleted tags from their customers (the rows cascade away)."""
    if not tags:
        return 0
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
    ids = sorted(set(group_tag_ids) | set(incoming_tag_ids))
    if len(ids) < 2:
        return 0
    return (
        Tagging.objects.filter(tag_id__in=ids)
        .values("customer_id")
        .annotate(n=Count("tag_id"))
        .filter(n__gt=1)
        .count()
    )


def tagging_counts(tag_ids: Sequence[int]) -> dict[int, int]:
    """How many customers carry each tag (for delete confirmations); 0 without the customers app."""
    if not tag_ids:
        return {}
    rows = Tagging.objects.filter(tag_id__in=list(tag_ids)).values("tag_id").annotate(n=Count("id"))
    return {r["tag_id"]: r["n"] for r in rows}


def register() -> None:
    """Called once from `CustomersConfig.ready()`."""
    hooks.register_tag_merge_handler(customer_taggings_merge)
    hooks.register_tag_delete_handler(customer_taggings_delete)
    hooks.register_personal_tag_delete_handler(personal_taggings_delete)
    hooks.register_tag_counter(_COUNTER)


_COUNTER = SimpleNamespace(single_choice_conflicts=single_choice_conflicts, tagging_counts=tagging_counts)
