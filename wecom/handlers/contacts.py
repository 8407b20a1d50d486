"""change_external_contact (客户联系变更): customers arrive, change and leave.

- add_external_contact / add_half_external_contact / edit_external_contact: fetch
  `externalcontact/get`, upsert the customer and the event's follow relation (remark,
  description, createtime, add_way, State) through `customer_upsert`, so a channel code's
  tags follow through the relation-added hook; enterprise tags WeCom reports on the follow
  relations are applied with source `wecom` (never echoed back). After an add with a
  WelcomeCode through an enabled channel code with a welcome message, that message is sent
  (`send_welcome_msg`), at most once (`wecom/welcome.py`).
- del_external_contact (the employee deleted the customer): relation `deleted`, kept as history.
- del_follow_user (the customer deleted the employee): relation `lost`, kept as history.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from customers.models import Customer, FollowRelation, RelationStatus, TagEvent, TagSource
from customers.services import customer_tags_update, customer_upsert, follow_relation_end
from org.actors import Actor
from org.models import Employee
from tags.models import Tag

from .. import welcome
from ..client import WeComClient, WeComError
from ..events import event_handler
from ..models import WeComEvent

logger = logging.getLogger(__name__)

WECOM_ACTOR = Actor(label="企业微信")
EVENT = "change_external_contact"
ADD_TYPES = ("add_external_contact", "add_half_external_contact")
NOT_A_CONTACT = 84061  # 不存在外部联系人的关系


class EventNotReady(Exception):
    """The event names something the portal does not know yet (an employee not synced): retried."""


def fetch_contact(client: WeComClient, external_userid: str) -> dict | None:
    """externalcontact/get with every page of follow_user; None when WeCom no longer knows it."""
    try:
        data = client.get("externalcontact/get", external_userid=external_userid)
    except WeComError as exc:
        if exc.errcode == NOT_A_CONTACT:
            return None
        raise
    followers = list(data.get("follow_user") or [])
    cursor = data.get("next_cursor")
    while cursor:
        page = client.get("externalcontact/get", external_userid=external_userid, cursor=cursor)
        followers.extend(page.get("follow_user") or [])
        cursor = page.get("next_cursor")
    data["follow_user"] = followers
    return data


def _iso(timestamp) -> str | None:
    try:
        seconds = int(timestamp)
    except (TypeError, ValueError):
        return None
    if not 0 < seconds < 2**32:
        return None
    return datetime.fromtimestamp(seconds, tz=UTC).isoformat()


def _str(value, limit: int) -> str:
    return value[:limit] if isinstance(value, str) else ""


def _customer_data(contact: dict, follower: dict, employee: Employee, state: str) -> dict:
    relation = {
        "employee": employee.userid,
        "remark": _str(follower.get("remark"), 128),
        "description": _str(follower.get("description"), 5000),
        "state": state,
    }
    added_at = _iso(follower.get("createtime"))
    if added_at:
        relation["added_at"] = added_at
    if isinstance(follower.get("add_way"), int):
        relation["add_way"] = follower["add_way"]
    data = {"external_userid": contact["external_userid"], "followers": [relation]}
    name = _str(contact.get("name"), 128).strip()
    if name:
        data["name"] = name
    if contact.get("type") in (1, 2):
        data["type"] = contact["type"]
    if contact.get("gender") in (0, 1, 2):
        data["gender"] = contact["gender"]
    avatar = _str(contact.get("avatar"), 500)
    if avatar.startswith(("http://", "https://")):
        data["avatar"] = avatar
    if "corp_name" in contact:
        data["corp_name"] = _str(contact.get("corp_name"), 128)
    return data


def _wecom_tag_ids(followers: list[dict]) -> list[str]:
    """Enterprise tag ids (type 1) on any follow relation, in WeCom's order, without repeats."""
    ids: dict[str, None] = {}
    for follower in followers:
        for tag in follower.get("tags") or []:
            if isinstance(tag, dict) and tag.get("type", 1) == 1 and tag.get("tag_id"):
                ids[str(tag["tag_id"])] = None
    return list(ids)


def sync_customer_tags(customer: Customer, followers: list[dict]) -> None:
    """Make the customer's WeCom-mapped enterprise tags follow WeCom, with source `wecom`.

    Tags WeCom reports (on any follow relation) and the portal maps (`Tag.external_id`) are added.
    A mapped tag WeCom no longer reports is removed only when WeCom put it there (its last change
    on this customer came from WeCom): a tag set in the portal and not yet pushed out by the
    outbox is not taken away by an event that predates the push.
    """
    wecom_ids = _wecom_tag_ids(followers)
    known = {t.external_id: t for t in Tag.objects.filter(external_id__in=wecom_ids).select_related("group")}
    wanted: dict[int, Tag] = {}
    single: dict[int, int] = {}  # single-choice group -> the tag kept (WeCom's last)
    for external_id in wecom_ids:
        tag = known.get(external_id)
        if tag is None:
            continue
        if tag.group.single_choice:
            previous = single.get(tag.group_id)
            if previous is not None:
                wanted.pop(previous, None)
            single[tag.group_id] = tag.pk
        wanted[tag.pk] = tag
    held = set(customer.taggings.filter(tag__external_id__isnull=False).values_list("tag_id", flat=True))
    add = [pk for pk in wanted if pk not in held]
    stale = held - set(wanted)
    remove = []
    if stale:
        last_source: dict[int, str] = {}
        for tag_id, source in (
            TagEvent.objects.filter(customer=customer, tag_id__in=stale).order_by("id").values_list("tag_id", "source")
        ):
            last_source[tag_id] = source
        remove = sorted(t for t in stale if last_source.get(t) == TagSource.WECOM)
    if add or remove:
        customer_tags_update(actor=WECOM_ACTOR, customer=customer, add=add, remove=remove, source=TagSource.WECOM)


@event_handler(EVENT, *ADD_TYPES, "edit_external_contact")
def contact_added_or_edited(event: WeComEvent) -> None:
    if not event.external_userid or not event.userid:
        raise ValueError("event without ExternalUserID or UserID")
    employee = Employee.objects.filter(userid=event.userid).first()
    if employee is None:
        raise EventNotReady(f"employee {event.userid} is not in the portal yet (run wecom_sync --org)")
    client = WeComClient()
    data = fetch_contact(client, event.external_userid)
    if data is None:
        logger.info("WeCom no longer knows %s; nothing to upsert", event.external_userid)
        return
    followers = data.get("follow_user") or []
    follower = next((f for f in followers if f.get("userid") == event.userid), None)
    if follower is None:
        return  # the relation ended again before we got here; its del event follows in order
    if employee.is_departed:  # 离职: their customers wait for 离职继承; WeCom's late news changes nothing
        logger.info("WeCom %s for departed employee %s ignored", event.change_type, employee.userid)
        return
    state = _str(follower.get("state"), 30) or _str(event.payload.get("State"), 30)
    customer_data = _customer_data(data["external_contact"], follower, employee, state)
    if event.change_type not in ADD_TYPES:
        ended = FollowRelation.objects.filter(
            customer__external_userid=event.external_userid, employee=employee
        ).exclude(status=RelationStatus.ACTIVE).exists()
        if ended:
            # An edit never brings an ended relation back: a relation handed over in the portal
            # (在职继承, WeCom completes it 24 h later) stays with its inheritor. Only an add does.
            customer_data.pop("followers")
    customer, _created = customer_upsert(actor=WECOM_ACTOR, data=customer_data)
    sync_customer_tags(customer, followers)
    welcome_code = event.payload.get("WelcomeCode")
    if event.change_type in ADD_TYPES and isinstance(welcome_code, str) and welcome_code:
        welcome.send_after_commit(event=event, state=state, welcome_code=welcome_code)


@event_handler(EVENT, "del_external_contact", "del_follow_user")
def contact_removed(event: WeComEvent) -> None:
    if not event.external_userid or not event.userid:
        raise ValueError("event without ExternalUserID or UserID")
    status = RelationStatus.DELETED if event.change_type == "del_external_contact" else RelationStatus.LOST
    follow_relation_end(
        actor=WECOM_ACTOR, customer=event.external_userid, employee=event.userid, status=status,
        ended_at=event.create_time,
    )

