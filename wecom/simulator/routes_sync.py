"""The sync's routes of the WeCom stand-in: corp tags (with WeCom's semantics), mark_tag, contact
ways, transfers and their results, unassigned customers, the address book.

WeCom's semantics kept here (doc 92117 and neighbours): `get_corp_tag_list` filters by group_id
(which wins) or tag_id, both empty = all, larger `order` first; `add_corp_tag` with a `group_id`
adds into that group (its `group_name`/`order` ignored), with a `group_name` that exists adds into
that group, never creates an empty group, and collapses duplicate names (the existing tag is
answered); `edit_corp_tag` refuses a name already used by a sibling; `del_corp_tag` needs one of
its lists, and a group whose last tag is deleted is deleted too; `mark_tag` marks one follow
relation and refuses tags that do not exist (40068) or a non-contact (84061).
"""

from __future__ import annotations

import time

from .registry import INVALID_PARAMETER, SimError, route
from .state import CorpTag, CorpTagGroup

NAME_MAX = 30
INVALID_TAG = 40068
NOT_CONTACT = 84061
USER_NOT_FOUND = 60111
TRANSFER_BATCH = 100


def _live_groups(sim):
    return [g for g in sim.state.tag_groups.values() if not g.deleted]


def _sorted(groups):
    return sorted(groups, key=lambda g: (-g.order, g.create_time, g.group_id))


def _group_json(group, only_tags=None) -> dict:
    data = group.as_json()
    tags = [t for t in group.tag if not t.deleted and (only_tags is None or t.id in only_tags)]
    data["tag"] = [t.as_json() for t in sorted(tags, key=lambda t: (-t.order, t.create_time, t.id))]
    return data


def _name(value, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise SimError(INVALID_PARAMETER, f"{field} missing")
    value = value.strip()
    if len(value) > NAME_MAX:
        raise SimError(INVALID_PARAMETER, f"{field} exceeds {NAME_MAX} characters")
    return value


def _order(value) -> int:
    if value in (None, ""):
        return 0
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**32:
        raise SimError(INVALID_PARAMETER, "invalid order")
    return value


@route("POST", "externalcontact/get_corp_tag_list")
def get_corp_tag_list(sim, req):
    group_ids = req.body.get("group_id") or []
    tag_ids = req.body.get("tag_id") or []
    groups = _live_groups(sim)
    if group_ids:
        wanted = set(map(str, group_ids))
        return {"tag_group": [_group_json(g) for g in _sorted(groups) if g.group_id in wanted]}
    if tag_ids:
        wanted = set(map(str, tag_ids))
        return {"tag_group": [_group_json(g, wanted) for g in _sorted(groups)
                              if any(t.id in wanted and not t.deleted for t in g.tag)]}
    return {"tag_group": [_group_json(g) for g in _sorted(groups)]}


@route("POST", "externalcontact/add_corp_tag")
def add_corp_tag(sim, req):
    tags = req.body.get("tag")
    if not isinstance(tags, list) or not tags:
        raise SimError(41000, "tag missing")  # a group cannot be empty
    group_id = req.body.get("group_id")
    if group_id:
        group = sim.state.tag_groups.get(str(group_id))
        if group is None or group.deleted:
            raise SimError(INVALID_TAG, "invalid tagid/groupid")
    else:
        group_name = _name(req.body.get("group_name"), "group_name")
        group = next((g for g in _live_groups(sim) if g.group_name == group_name), None)
        if group is None:
            group = CorpTagGroup(group_id=sim.state.new_id("etG"), group_name=group_name,
                                 order=_order(req.body.get("order")), created_by_app=True)
            sim.state.tag_groups[group.group_id] = group
    answer = []
    for item in tags:
        if not isinstance(item, dict):
            raise SimError(INVALID_PARAMETER, "invalid tag")
        name = _name(item.get("name"), "tag.name")
        existing = next((t for t in group.tag if not t.deleted and t.name == name), None)
        if existing is None:  # duplicate names collapse into the existing tag
            existing = CorpTag(id=sim.state.new_id("etT"), name=name, order=_order(item.get("order")))
            group.tag.append(existing)
        if existing not in answer:
            answer.append(existing)
    data = group.as_json()
    data["tag"] = [t.as_json() for t in answer]
    return {"tag_group": data}


@route("POST", "externalcontact/edit_corp_tag")
def edit_corp_tag(sim, req):
    ident = str(req.require("id"))
    name = req.body.get("name")
    group = sim.state.tag_groups.get(ident)
    if group is not None and not group.deleted:
        if not group.created_by_app:
            raise SimError(301002, "no privilege: not created by this app")
        if name is not None:
            name = _name(name, "name")
            if any(g.group_name == name and g is not group for g in _live_groups(sim)):
                raise SimError(40071, "tag group name already exists")
            group.group_name = name
        if "order" in req.body:
            group.order = _order(req.body.get("order"))
        return {}
    found = sim.state.find_tag(ident)
    if found is None:
        raise SimError(INVALID_TAG, "invalid tagid/groupid")
    group, tag = found
    if not group.created_by_app:
        raise SimError(301002, "no privilege: not created by this app")
    if name is not None:
        name = _name(name, "name")
        if any(t.name == name and t is not tag and not t.deleted for t in group.tag):
            raise SimError(40071, "tag name already exists in the group")
        tag.name = name
        _rename_marks(sim, tag)
    if "order" in req.body:
        tag.order = _order(req.body.get("order"))
    return {}


def _rename_marks(sim, tag) -> None:
    for contact in sim.state.contacts.values():
        for follower in contact.follow_users:
            for mark in follower.tags:
                if mark.get("tag_id") == tag.id:
                    mark["tag_name"] = tag.name


def _unmark(sim, tag_ids: set[str]) -> None:
    for contact in sim.state.contacts.values():
        for follower in contact.follow_users:
            follower.tags = [m for m in follower.tags if m.get("tag_id") not in tag_ids]


@route("POST", "externalcontact/del_corp_tag")
def del_corp_tag(sim, req):
    tag_ids = [str(t) for t in req.body.get("tag_id") or []]
    group_ids = [str(g) for g in req.body.get("group_id") or []]
    if not tag_ids and not group_ids:
        raise SimError(41000, "tag_id and group_id are both empty")
    gone: set[str] = set()
    for gid in group_ids:
        group = sim.state.tag_groups.get(gid)
        if group is None or group.deleted:
            raise SimError(INVALID_TAG, "invalid tagid/groupid")
    for tid in tag_ids:
        if sim.state.find_tag(tid) is None:
            raise SimError(INVALID_TAG, "invalid tagid/groupid")
    for gid in group_ids:
        group = sim.state.tag_groups[gid]
        group.deleted = True
        for tag in group.tag:
            tag.deleted = True
            gone.add(tag.id)
    for tid in tag_ids:
        found = sim.state.find_tag(tid)
        if found is None:
            continue
        group, tag = found
        tag.deleted = True
        gone.add(tag.id)
        if all(t.deleted for t in group.tag):
            group.deleted = True  # WeCom deletes a group with its last tag
    _unmark(sim, gone)
    return {}


@route("POST", "externalcontact/mark_tag")
def mark_tag(sim, req):
    userid = req.require("userid")
    external_userid = req.require("external_userid")
    add = [str(t) for t in req.body.get("add_tag") or []]
    remove = [str(t) for t in req.body.get("remove_tag") or []]
    if not add and not remove:
        raise SimError(INVALID_PARAMETER, "add_tag and remove_tag are both empty")
    contact = sim.state.contacts.get(external_userid)
    follower = contact.follower(userid) if contact is not None else None
    if follower is None:
        raise SimError(NOT_CONTACT, "not external contact")
    found = {}
    for tid in add + remove:
        hit = sim.state.find_tag(tid)
        if hit is None:
            raise SimError(INVALID_TAG, f"invalid tagid {tid}")
        found[tid] = hit
    follower.tags = [m for m in follower.tags if m.get("tag_id") not in set(remove)]
    held = {m.get("tag_id") for m in follower.tags}
    for tid in add:
        if tid not in held:
            group, tag = found[tid]
            follower.tags.append({"group_name": group.group_name, "tag_name": tag.name, "tag_id": tid, "type": 1})
            held.add(tid)
    return {}


# ------------------------------------------------------------------ contact ways (联系我)


_CONTACT_WAY_FIELDS = ("type", "scene", "style", "remark", "skip_verify", "state", "user", "party", "is_temp",
                       "expires_in", "chat_expires_in", "unionid", "conclusions")


def _check_contact_way(sim, body: dict, *, creating: bool) -> None:
    kind = body.get("type")
    if creating and kind not in (1, 2):
        raise SimError(INVALID_PARAMETER, "type must be 1 or 2")
    if creating and body.get("scene") not in (1, 2):
        raise SimError(INVALID_PARAMETER, "scene must be 1 or 2")
    state = body.get("state")
    if state is not None and (not isinstance(state, str) or len(state) > 30):
        raise SimError(INVALID_PARAMETER, "state exceeds 30 characters")
    remark = body.get("remark")
    if remark is not None and (not isinstance(remark, str) or len(remark) > 30):
        raise SimError(INVALID_PARAMETER, "remark exceeds 30 characters")
    users = body.get("user")
    if users is not None:
        if not isinstance(users, list):
            raise SimError(INVALID_PARAMETER, "user must be a list")
        for userid in users:
            if userid not in sim.state.users:
                raise SimError(USER_NOT_FOUND, f"userid not found: {userid}")
        if kind == 1 and len(users) != 1:
            raise SimError(INVALID_PARAMETER, "type 1 takes exactly one user")
        if len(users) > 100:
            raise SimError(INVALID_PARAMETER, "at most 100 users")
    if creating and not (body.get("user") or body.get("party")):
        raise SimError(41000, "user and party are both empty")
    if body.get("party") and kind == 1:
        raise SimError(INVALID_PARAMETER, "party only with type 2")


@route("POST", "externalcontact/add_contact_way")
def add_contact_way(sim, req):
    _check_contact_way(sim, req.body, creating=True)
    config_id = sim.state.new_id("cw")
    way = {k: req.body[k] for k in _CONTACT_WAY_FIELDS if k in req.body}
    way.setdefault("skip_verify", True)
    way["config_id"] = config_id
    if way.get("scene") == 2:
        way["qr_code"] = f"https://wework.qpic.cn/wwpic/sim/{config_id}/0"
    sim.state.contact_ways[config_id] = way
    answer = {"config_id": config_id}
    if "qr_code" in way:
        answer["qr_code"] = way["qr_code"]
    return answer


def _way(sim, req) -> dict:
    config_id = req.require("config_id")
    way = sim.state.contact_ways.get(config_id)
    if way is None:
        raise SimError(41044, "invalid config_id")
    return way


@route("POST", "externalcontact/update_contact_way")
def update_contact_way(sim, req):
    way = _way(sim, req)
    body = {**req.body, "type": way.get("type")}
    _check_contact_way(sim, body, creating=False)
    for key in _CONTACT_WAY_FIELDS:
        if key in req.body and key not in ("type", "scene"):
            way[key] = req.body[key]
    return {}


@route("POST", "externalcontact/get_contact_way")
def get_contact_way(sim, req):
    return {"contact_way": dict(_way(sim, req))}


@route("POST", "externalcontact/del_contact_way")
def del_contact_way(sim, req):
    way = _way(sim, req)
    del sim.state.contact_ways[way["config_id"]]
    return {}


# ------------------------------------------------------------------ transfers (离职继承 / 在职继承)


def _transfer(sim, req, *, resigned: bool):
    handover = req.require("handover_userid")
    takeover = req.require("takeover_userid")
    externals = req.body.get("external_userid")
    if not isinstance(externals, list) or not externals:
        raise SimError(41000, "external_userid missing")
    if len(externals) > TRANSFER_BATCH:
        raise SimError(INVALID_PARAMETER, "external_userid exceeds 100")
    if takeover not in sim.state.users:
        raise SimError(USER_NOT_FOUND, f"userid not found: {takeover}")
    message = req.body.get("transfer_success_msg")
    if message is not None and (not isinstance(message, str) or len(message) > 200):
        raise SimError(INVALID_PARAMETER, "transfer_success_msg exceeds 200 characters")
    user = sim.state.users.get(handover)
    if resigned and user is not None and user.status != 5:
        raise SimError(40096, "handover user has not left")  # 离职继承 needs a departed employee
    answers = []
    for external in externals:
        contact = sim.state.contacts.get(external)
        if contact is None or contact.follower(handover) is None:
            answers.append({"external_userid": external, "errcode": NOT_CONTACT})
            continue
        sim.state.transfers.append({"handover_userid": handover, "takeover_userid": takeover,
                                    "external_userid": external, "resigned": resigned, "status": 2,
                                    "takeover_time": 0, "at": time.time()})
        answers.append({"external_userid": external, "errcode": 0})
    return {"customer": answers}


@route("POST", "externalcontact/resigned/transfer_customer")
def resigned_transfer_customer(sim, req):
    return _transfer(sim, req, resigned=True)


@route("POST", "externalcontact/transfer_customer")
def transfer_customer(sim, req):
    return _transfer(sim, req, resigned=False)


RESULT_PAGE = 100


def _result(sim, req, *, resigned: bool):
    handover = req.require("handover_userid")
    takeover = req.require("takeover_userid")
    rows = [t for t in sim.state.transfers
            if t["handover_userid"] == handover and t["takeover_userid"] == takeover and t["resigned"] == resigned]
    start = int(req.body.get("cursor") or 0)
    page = rows[start:start + RESULT_PAGE]
    more = start + RESULT_PAGE < len(rows)
    return {"customer": [{"external_userid": t["external_userid"], "status": t["status"],
                          "takeover_time": t["takeover_time"]} for t in page],
            "next_cursor": str(start + RESULT_PAGE) if more else ""}


@route("POST", "externalcontact/resigned/transfer_result")
def resigned_transfer_result(sim, req):
    return _result(sim, req, resigned=True)


@route("POST", "externalcontact/transfer_result")
def transfer_result(sim, req):
    return _result(sim, req, resigned=False)


def complete_transfers(sim, *, status: int = 1) -> int:
    """Test/demo control: WeCom's 24 h pass — waiting hand-overs end with `status` (1 done: the
    contact's follower becomes the takeover employee)."""
    done = 0
    with sim.state.lock:
        for t in sim.state.transfers:
            if t["status"] != 2:
                continue
            t["status"] = status
            if status == 1:
                t["takeover_time"] = int(time.time())
                contact = sim.state.contacts.get(t["external_userid"])
                follower = contact.follower(t["handover_userid"]) if contact else None
                if follower is not None and contact.follower(t["takeover_userid"]) is None:
                    follower.userid = t["takeover_userid"]
            done += 1
    return done


@route("POST", "externalcontact/get_unassigned_list")
def get_unassigned_list(sim, req):
    size = req.body.get("page_size", 1000)
    if not isinstance(size, int) or isinstance(size, bool) or not 1 <= size <= 1000:
        raise SimError(INVALID_PARAMETER, "page_size must be 1..1000")
    transferred = {(t["handover_userid"], t["external_userid"]) for t in sim.state.transfers}
    rows = []
    for user in sorted(sim.state.users.values(), key=lambda u: u.userid):
        if user.status != 5:
            continue
        for contact in sorted(sim.state.contacts.values(), key=lambda c: c.external_userid):
            if contact.follower(user.userid) and (user.userid, contact.external_userid) not in transferred:
                rows.append({"handover_userid": user.userid, "external_userid": contact.external_userid,
                             "dimission_time": getattr(user, "dimission_time", 0) or int(time.time())})
    start = int(req.body.get("cursor") or 0)
    page = rows[start:start + size]
    last = start + size >= len(rows)
    return {"info": page, "is_last": last, "next_cursor": "" if last else str(start + size)}


# ------------------------------------------------------------------ address book (通讯录)


@route("GET", "department/list")
def department_list(sim, req):
    departments = sorted(sim.state.departments.values(), key=lambda d: (d.parentid, -d.order, d.id))
    root = req.params.get("id")
    if root:
        root = int(root)
        keep, frontier = {root}, [root]
        while frontier:
            parent = frontier.pop()
            for d in departments:
                if d.parentid == parent and d.id not in keep:
                    keep.add(d.id)
                    frontier.append(d.id)
        departments = [d for d in departments if d.id in keep]
    return {"department": [d.as_json() for d in departments]}


@route("GET", "user/list")
def user_list(sim, req):
    try:
        department = int(req.params.get("department_id") or 0)
    except ValueError:
        raise SimError(INVALID_PARAMETER, "invalid department_id") from None
    if department not in sim.state.departments:
        raise SimError(60123, "invalid department")
    wanted = {department}
    if str(req.params.get("fetch_child") or "0") == "1":
        frontier = [department]
        while frontier:
            parent = frontier.pop()
            for d in sim.state.departments.values():
                if d.parentid == parent and d.id not in wanted:
                    wanted.add(d.id)
                    frontier.append(d.id)
    users = [u for u in sorted(sim.state.users.values(), key=lambda u: u.userid)
             if set(u.department) & wanted]
    return {"userlist": [u.as_json() for u in users]}

