"""Corp tags (企业客户标签) both ways: the portal's taxonomy pushed to WeCom, WeCom's read back.

Push: the tags services call `on_taxonomy_changed` (registered in `tags.hooks`) inside their
transaction; it queues `TaxonomyPush` rows, committed with the change. `taxonomy_push_pending()`
(run by the `wecom.push_outbox` task before the tag outbox) sends them in order with
`add_corp_tag` / `edit_corp_tag` / `del_corp_tag` and stores WeCom's ids in `external_id`; the first
failure stops the pass (retried with backoff), so changes reach WeCom in the order they were made.
Changes made by `WECOM_ACTOR` (coming from WeCom) are not queued: nothing is echoed back.

Pull: `corp_tags_apply(tag_groups, full=...)` applies `get_corp_tag_list`'s answer through the tags
services as `WECOM_ACTOR`, matching by `external_id` (then by mapped name, adopting a portal group
or tag not yet linked). `full=True` (the full pull, a shuffle) also removes what WeCom no longer has.
The level mapping is in `wecom.mapping`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from tagportal.errors import DomainError
from tags import services as tag_services
from tags.models import Tag, TagGroup
from tags.selectors import normalise_for_compare as name_key

from . import conf
from .mapping import WECOM_ACTOR, is_wecom, portal_name_from_wecom, portal_order, wecom_group_name, wecom_order
from .sync_models import OutboxStatus, TaxonomyPush

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 10
INVALID_ID = 40068  # invalid tagid/groupid: already gone in WeCom


def retry_delay(attempts: int) -> timedelta:
    return timedelta(seconds=min(5 * 2 ** max(attempts - 1, 0), 3600))


def client():
    from .client import WeComClient

    return WeComClient()


def _path(group: TagGroup) -> list[str]:
    return [g.name for g in group.get_ancestors(include_self=True)]


def group_wecom_name(group: TagGroup) -> str:
    return wecom_group_name(_path(group))


# ------------------------------------------------------------------ queueing (inside the tags services)


def on_taxonomy_changed(*, actor, change) -> None:
    """taxonomy-changed handler: queue what WeCom must learn (only when connected, never WeCom's own)."""
    if is_wecom(actor) or not conf.api_configured():
        return
    rows = []
    if change.kind == "group":
        if change.action == "created":
            return  # an empty group has no WeCom counterpart until its first tag is pushed
        for group in change.objects:
            if change.action == "deleted":
                if group.external_id:
                    rows.append(TaxonomyPush(kind="group", action="deleted", object_id=group.pk,
                                             external_ids=[group.external_id]))
            else:  # renamed, reordered or moved: every group below has a new path too
                subtree = group.get_descendants(include_self=True).filter(external_id__isnull=False)
                rows += [TaxonomyPush(kind="group", action="updated", object_id=g.pk) for g in subtree]
    else:
        for tag in change.objects:
            if change.action == "deleted":
                if tag.external_id:
                    rows.append(TaxonomyPush(kind="tag", action="deleted", object_id=tag.pk,
                                             external_ids=[tag.external_id], previous_group_id=tag.group_id))
            elif change.action == "moved":
                rows.append(TaxonomyPush(kind="tag", action="moved", object_id=tag.pk,
                                         external_ids=[tag.external_id] if tag.external_id else [],
                                         previous_group_id=change.previous_group_id))
            else:
                rows.append(TaxonomyPush(kind="tag", action=change.action, object_id=tag.pk))
    if rows:
        TaxonomyPush.objects.bulk_create(rows)
        transaction.on_commit(push_soon)


def push_soon() -> None:
    from .sync_tasks import push_outbox

    try:
        push_outbox.delay()
    except Exception:  # noqa: BLE001 - the periodic run picks it up
        logger.warning("could not queue wecom.push_outbox; the periodic run will push")


@transaction.atomic
def taxonomy_retry_failed() -> int:
    """Give failed corp-tag pushes another round (the status page's button)."""
    return TaxonomyPush.objects.filter(status=OutboxStatus.FAILED).update(
        status=OutboxStatus.PENDING, attempts=0, finished_at=None, next_attempt_at=timezone.now())


def taxonomy_push_all() -> int:
    """Queue every portal tag WeCom does not know yet (after connecting a corp, after a pull)."""
    queued = TaxonomyPush.objects.filter(kind="tag", status=OutboxStatus.PENDING).values("object_id")
    ids = list(Tag.objects.filter(external_id__isnull=True).exclude(pk__in=queued)
               .order_by("group_id", "order", "id").values_list("pk", flat=True))
    TaxonomyPush.objects.bulk_create([TaxonomyPush(kind="tag", action="created", object_id=pk) for pk in ids])
    return len(ids)


# ------------------------------------------------------------------ pushing


@dataclass
class PushResult:
    done: int = 0
    failed: int = 0
    calls: list = field(default_factory=list)


def taxonomy_push_pending(*, api=None, limit: int = 500) -> PushResult:
    """Send the queued taxonomy changes in order; stop at the first failure (retried later)."""
    result = PushResult()
    api = api or client()
    now = timezone.now()
    rows = list(TaxonomyPush.objects.filter(status=OutboxStatus.PENDING).order_by("id")[:limit])
    for row in rows:
        if row.next_attempt_at > now:
            break  # head of the line waits for its retry time: keep the order
        try:
            _push_one(api, row)
        except Exception as exc:  # noqa: BLE001 - WeCom or a domain error: keep the row, retry later
            from .client import WeComError

            row.attempts += 1
            row.last_error = str(exc)[:2000]
            # WeCom refusing for good (e.g. 301002: a tag made in WeCom's console, which this app may
            # not edit) fails at once and lets the rest go; busy, unreachable: retried in order.
            refused = isinstance(exc, WeComError) and not exc.retryable
            if row.attempts >= MAX_ATTEMPTS or refused:
                row.status = OutboxStatus.FAILED
                row.finished_at = timezone.now()
            else:
                row.next_attempt_at = timezone.now() + retry_delay(row.attempts)
            row.save(update_fields=["attempts", "last_error", "status", "finished_at", "next_attempt_at"])
            result.failed += 1
            logger.warning("corp tag push %s failed: %s", row.pk, row.last_error)
            if row.status != OutboxStatus.FAILED:
                break
            continue
        row.status = OutboxStatus.DONE
        row.finished_at = timezone.now()
        row.attempts += 1
        row.save(update_fields=["status", "finished_at", "attempts"])
        result.done += 1
    return result


def _delete_ids(api, *, tag_ids=(), group_ids=()) -> None:
    from .client import WeComError

    try:
        api.post("externalcontact/del_corp_tag", {"tag_id": list(tag_ids), "group_id": list(group_ids)})
    except WeComError as exc:
        if exc.errcode != INVALID_ID:  # already gone: what we wanted
            raise


def _push_one(api, row: TaxonomyPush) -> None:
    if row.kind == "group":
        if row.action == "deleted":
            _delete_ids(api, group_ids=row.external_ids)
            return
        group = TagGroup.objects.filter(pk=row.object_id).first()
        if group is not None and group.external_id:
            api.post("externalcontact/edit_corp_tag",
                     {"id": group.external_id, "name": group_wecom_name(group), "order": wecom_order(group.order)})
        return
    if row.action == "deleted":
        _delete_ids(api, tag_ids=row.external_ids)
        _forget_emptied_group(row.previous_group_id)
        return
    tag = Tag.objects.select_related("group").filter(pk=row.object_id).first()
    if tag is None:
        return  # deleted since: its own row deletes it
    if row.action == "moved" and row.external_ids:
        # WeCom cannot move a tag between groups: delete it there, create it in the new group, then
        # mark it again on the customers who hold it (from the outbox).
        _delete_ids(api, tag_ids=row.external_ids)
        _forget_emptied_group(row.previous_group_id)
        tag_services.tag_external_id_set(tag=tag, external_id=None)
        _tag_create(api, tag)
        from .outbox import outbox_enqueue_tag

        outbox_enqueue_tag(tag=tag)
        return
    if tag.external_id:
        api.post("externalcontact/edit_corp_tag", {"id": tag.external_id, "name": tag.name,
                                                   "order": wecom_order(tag.order)})
    else:
        _tag_create(api, tag)


def _forget_emptied_group(group_id) -> None:
    """WeCom deletes a group with its last tag: the portal group is no longer linked."""
    group = TagGroup.objects.filter(pk=group_id).first() if group_id else None
    if group is not None and group.external_id and not group.tags.filter(external_id__isnull=False).exists():
        tag_services.tag_group_external_id_set(group=group, external_id=None)


def _tag_create(api, tag: Tag) -> None:
    group = tag.group
    payload = {"tag": [{"name": tag.name, "order": wecom_order(tag.order)}]}
    if conf_agent_id():
        payload["agentid"] = int(conf_agent_id())
    if group.external_id:
        payload["group_id"] = group.external_id
    else:
        payload.update(group_name=group_wecom_name(group), order=wecom_order(group.order))
    from .client import WeComError

    try:
        answer = api.post("externalcontact/add_corp_tag", payload)
    except WeComError as exc:
        if exc.errcode != INVALID_ID or not group.external_id:
            raise
        # Our group id is stale (deleted in WeCom): create the group again by name.
        tag_services.tag_group_external_id_set(group=group, external_id=None)
        payload.pop("group_id")
        payload.update(group_name=group_wecom_name(group), order=wecom_order(group.order))
        answer = api.post("externalcontact/add_corp_tag", payload)
    created = answer.get("tag_group") or {}
    if created.get("group_id") and created["group_id"] != group.external_id:
        tag_services.tag_group_external_id_set(group=group, external_id=created["group_id"])
    key = name_key(tag.name)
    match = next((t for t in created.get("tag") or [] if name_key(str(t.get("name", ""))) == key), None)
    if match is None:
        raise DomainError(f"add_corp_tag did not return the tag {tag.name!r}")
    tag_services.tag_external_id_set(tag=tag, external_id=match["id"])


def conf_agent_id() -> str:
    from django.conf import settings

    return str(getattr(settings, "WECOM_AGENT_ID", "") or "").strip()


# ------------------------------------------------------------------ pulling (WeCom → portal)


@dataclass
class ApplyResult:
    groups_created: int = 0
    groups_updated: int = 0
    groups_deleted: int = 0
    tags_created: int = 0
    tags_updated: int = 0
    tags_deleted: int = 0

    def as_dict(self) -> dict:
        return dict(self.__dict__)

    @property
    def changed(self) -> int:
        return sum(self.__dict__.values())


def _group_for(wecom_group: dict, by_name: dict[str, TagGroup], result: ApplyResult) -> TagGroup:
    gid = str(wecom_group["group_id"])
    name = str(wecom_group.get("group_name") or "").strip()
    group = TagGroup.objects.filter(external_id=gid).first()
    if group is None:
        group = by_name.get(name)
        if group is not None and group.external_id and group.external_id != gid:
            group = None  # linked to another WeCom group already
        if group is not None:
            tag_services.tag_group_external_id_set(group=group, external_id=gid)
        else:
            clash = tag_services.name_clash(TagGroup.objects.filter(parent=None), name[:30])
            if clash is not None:  # a top-level group of that name, linked elsewhere: keep both apart
                name = f"{name[:24]}-{gid[-5:]}"
            group = tag_services.tag_group_create(actor=WECOM_ACTOR, name=name[:30], external_id=gid)
            result.groups_created += 1
            by_name[group_wecom_name(group)] = group
            return group
    if name and name != group_wecom_name(group):
        parent_path = _path(group)[:-1]
        own = portal_name_from_wecom(name, parent_path)
        if own and own != group.name:
            tag_services.tag_group_update(actor=WECOM_ACTOR, group=group, name=own)
            result.groups_updated += 1
    return group


def corp_tags_apply(tag_groups: list[dict], *, full: bool = False, deleted_ids: tuple = ()) -> ApplyResult:
    """Apply WeCom's `tag_group` list. `full`: the list is everything WeCom has, so linked groups
    and tags missing from it are deleted in the portal; `deleted_ids`: ids WeCom said it deleted."""
    result = ApplyResult()
    by_name = {group_wecom_name(g): g for g in TagGroup.objects.all()}
    seen_tags: set[str] = set()
    seen_groups: set[str] = set()
    with transaction.atomic():
        for wg in tag_groups:
            if wg.get("deleted"):
                continue
            group = _group_for(wg, by_name, result)
            seen_groups.add(str(wg["group_id"]))
            for wt in wg.get("tag") or []:
                if wt.get("deleted"):
                    continue
                tid = str(wt["id"])
                seen_tags.add(tid)
                _tag_apply(group, wt, result)
        gone_tags = set(map(str, deleted_ids))
        gone_groups = set(map(str, deleted_ids))
        if full:
            gone_tags |= set(Tag.objects.filter(external_id__isnull=False).exclude(external_id__in=seen_tags)
                             .values_list("external_id", flat=True))
            gone_groups |= set(TagGroup.objects.filter(external_id__isnull=False)
                               .exclude(external_id__in=seen_groups).values_list("external_id", flat=True))
        for tag in Tag.objects.filter(external_id__in=gone_tags - seen_tags):
            tag_services.tag_delete(actor=WECOM_ACTOR, tag=tag)
            result.tags_deleted += 1
        for group in TagGroup.objects.filter(external_id__in=gone_groups - seen_groups):
            _group_gone(group, result)
    return result


def _group_gone(group: TagGroup, result: ApplyResult) -> None:
    """WeCom deleted the group (and so its tags): delete its linked tags; the portal group itself
    goes only when nothing is left in it (sub-groups are other WeCom groups, unlinked tags are ours)."""
    for tag in group.tags.filter(external_id__isnull=False):
        tag_services.tag_delete(actor=WECOM_ACTOR, tag=tag)
        result.tags_deleted += 1
    group.refresh_from_db()
    if not group.tags.exists() and not group.get_children().exists():
        tag_services.tag_group_delete(actor=WECOM_ACTOR, group=group)
        result.groups_deleted += 1
    else:
        tag_services.tag_group_external_id_set(group=group, external_id=None)


def _tag_apply(group: TagGroup, wt: dict, result: ApplyResult) -> None:
    tid = str(wt["id"])
    name = str(wt.get("name") or "").strip()[:30]
    order = portal_order(wt.get("order"))
    tag = Tag.objects.filter(external_id=tid).first()
    if tag is None:
        key = name_key(name)
        tag = next((t for t in Tag.objects.filter(group=group, external_id__isnull=True) if name_key(t.name) == key),
                   None)
        if tag is not None:
            tag_services.tag_external_id_set(tag=tag, external_id=tid)
        else:
            try:
                tag_services.tag_create(actor=WECOM_ACTOR, group=group, name=name, order=order, external_id=tid)
            except DomainError as exc:  # e.g. a near-duplicate name WeCom allows and we do not
                logger.warning("WeCom tag %s (%r) not created: %s", tid, name, exc)
                return
            result.tags_created += 1
            return
    changes = {}
    if tag.group_id != group.pk:
        changes["group"] = group
    if name and name != tag.name:
        changes["name"] = name
    if order != tag.order:
        changes["order"] = order
    if changes:
        tag_services.tag_update(actor=WECOM_ACTOR, tag=tag, **changes)
        result.tags_updated += 1


def corp_tags_fetch(*, api=None, tag_ids=(), group_ids=()) -> list[dict]:
    api = api or client()
    answer = api.post("externalcontact/get_corp_tag_list", {"tag_id": list(tag_ids), "group_id": list(group_ids)})
    return answer.get("tag_group") or []


def corp_tags_pull(*, api=None) -> ApplyResult:
    """Everything WeCom has, applied (the full pull's tags phase; a shuffle event)."""
    return corp_tags_apply(corp_tags_fetch(api=api), full=True)
