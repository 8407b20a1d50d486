"""Core routes: access token, customer details, customers by employee, welcome messages."""

from __future__ import annotations

import time

from .registry import INVALID_PARAMETER, SimError, route

FOLLOWERS_PAGE = 500  # externalcontact/get pages follow_user beyond this


@route("GET", "gettoken")
def gettoken(sim, req):
    corpid = req.params.get("corpid")
    secret = req.params.get("corpsecret")
    if not corpid:
        raise SimError(41002, "corpid missing")
    if not secret:
        raise SimError(41004, "corpsecret missing")
    if corpid != sim.state.corp_id:
        raise SimError(40013, "invalid corpid")
    if secret != sim.state.secret:
        raise SimError(40001, "invalid credential")
    return {"access_token": sim.state.issue_token(sim.token_ttl), "expires_in": sim.token_ttl}


def _cursor(value) -> int:
    if value in (None, ""):
        return 0
    try:
        position = int(value)
    except (TypeError, ValueError):
        raise SimError(INVALID_PARAMETER, "invalid cursor") from None
    if position < 0:
        raise SimError(INVALID_PARAMETER, "invalid cursor")
    return position


@route("GET", "externalcontact/get")
def externalcontact_get(sim, req):
    external_userid = req.params.get("external_userid")
    if not external_userid:
        raise SimError(41035, "external_userid missing")
    contact = sim.state.contacts.get(external_userid)
    if contact is None or not contact.follow_users:
        raise SimError(84061, "not external contact")
    start = _cursor(req.params.get("cursor"))
    page = contact.follow_users[start : start + FOLLOWERS_PAGE]
    more = start + FOLLOWERS_PAGE < len(contact.follow_users)
    return {
        "external_contact": contact.as_json(),
        "follow_user": [f.as_json() for f in page],
        "next_cursor": str(start + FOLLOWERS_PAGE) if more else "",
    }


@route("POST", "externalcontact/batch/get_by_user")
def batch_get_by_user(sim, req):
    userids = req.body.get("userid_list")
    if not isinstance(userids, list) or not userids:
        raise SimError(41000, "userid_list missing")
    if len(userids) > 100:
        raise SimError(INVALID_PARAMETER, "userid_list exceeds 100")
    limit = req.body.get("limit", 50)
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= 100:
        raise SimError(INVALID_PARAMETER, "limit must be 1..100")
    for userid in userids:
        if userid not in sim.state.users:
            raise SimError(60111, f"userid not found: {userid}")
    wanted = set(userids)
    items = []
    for contact in sorted(sim.state.contacts.values(), key=lambda c: c.external_userid):
        for follower in contact.follow_users:
            if follower.userid in wanted:
                items.append({"external_contact": contact.as_json(), "follow_info": follower.follow_info()})
    start = _cursor(req.body.get("cursor"))
    page = items[start : start + limit]
    more = start + limit < len(items)
    return {"external_contact_list": page, "next_cursor": str(start + limit) if more else ""}


WELCOME_WINDOW = 20  # seconds after the event during which the welcome_code may be used


@route("POST", "externalcontact/send_welcome_msg")
def send_welcome_msg(sim, req):
    code = req.body.get("welcome_code")
    if not code:
        raise SimError(41000, "welcome_code missing")
    text = (req.body.get("text") or {}).get("content", "") if isinstance(req.body.get("text"), dict) else ""
    attachments = req.body.get("attachments") or []
    if not text and not attachments:
        raise SimError(41000, "text or attachments missing")
    if len(text.encode("utf-8")) > 4000:
        raise SimError(INVALID_PARAMETER, "text.content exceeds 4000 bytes")
    if not isinstance(attachments, list) or len(attachments) > 9:
        raise SimError(INVALID_PARAMETER, "at most 9 attachments")
    entry = sim.state.welcome_codes.get(code)
    if entry is None or time.time() - entry["issued_at"] > WELCOME_WINDOW:
        raise SimError(40098, "invalid welcome_code")  # unknown or expired: WeCom's exact code is unverified
    if entry["used"]:
        raise SimError(41051, "externaluser has started chatting")
    entry["used"] = True
    sim.state.welcome_messages.append(
        {"welcome_code": code, "userid": entry["userid"], "external_userid": entry["external_userid"],
         "text": text, "attachments": attachments}
    )
    return {}
