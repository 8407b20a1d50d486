"""What happens in the simulated corp, as control actions (`POST /sim/<action>` on a running
simulator, driven by `manage.py wecom_simulate <action>`): the state changes as in WeCom, then
the matching encrypted event goes to the portal's callback URL.

Body keys: `callback` (the portal's /wecom/callback/ URL; default the simulator's), and per action:
- `add-customer`: `employee`, optional `external_userid`, `name`, `state`, `remark`,
  `description`, `tags` (WeCom tag ids), `welcome` (default true): a customer adds the employee.
- `edit-customer`: `employee`, `external_userid`, optional `remark`, `description`, `tags`.
- `del-customer`: `employee`, `external_userid`: the employee deleted the customer.
- `lose-customer`: `employee`, `external_userid`: the customer deleted the employee.
- `tag-change`: `id`, `tag_type` (`tag` / `tag_group`), `change_type` (create/update/delete/shuffle).
- `event`: `fields`: any event fields as they are.
"""

from __future__ import annotations

from typing import Any

from .state import now


def _tags(sim, tag_ids: list[str] | None) -> list[dict]:
    tags = []
    for tag_id in tag_ids or []:
        found = sim.state.find_tag(str(tag_id))
        if found is None:
            raise ValueError(f"unknown WeCom tag id {tag_id}")
        group, tag = found
        tags.append({"group_name": group.group_name, "tag_name": tag.name, "tag_id": tag.id, "type": 1})
    return tags


def _need(body: dict, key: str) -> Any:
    value = body.get(key)
    if value in (None, ""):
        raise ValueError(f"{key} is required")
    return value


def run_action(sim, action: str, body: dict) -> dict:
    callback = body.get("callback") or sim.callback_url
    if not callback:
        raise ValueError("callback (the portal's /wecom/callback/ URL) is required")
    state = sim.state
    if action == "add-customer":
        with state.lock:
            contact, follower, code = state.add_contact(
                userid=_need(body, "employee"), external_userid=body.get("external_userid") or None,
                name=body.get("name", ""), state=body.get("state", ""), remark=body.get("remark", ""),
                description=body.get("description", ""), tags=_tags(sim, body.get("tags")),
                welcome_code=body.get("welcome", True),
            )
            fields = sim.add_contact_event(contact, follower, code)
    elif action == "edit-customer":
        with state.lock:
            contact = state.contacts.get(_need(body, "external_userid"))
            follower = contact.follower(_need(body, "employee")) if contact else None
            if follower is None:
                raise ValueError("no such follow relation")
            for key in ("remark", "description"):
                if key in body:
                    setattr(follower, key, body[key])
            if "tags" in body:
                follower.tags = _tags(sim, body["tags"])
            fields = sim.contact_event("edit_external_contact", userid=follower.userid,
                                       external_userid=contact.external_userid)
    elif action in ("del-customer", "lose-customer"):
        userid, external_userid = _need(body, "employee"), _need(body, "external_userid")
        if not state.remove_follower(userid=userid, external_userid=external_userid):
            raise ValueError("no such follow relation")
        change = "del_external_contact" if action == "del-customer" else "del_follow_user"
        fields = sim.contact_event(change, userid=userid, external_userid=external_userid)
    elif action == "tag-change":
        fields = {"Event": "change_external_tag", "Id": str(_need(body, "id")),
                  "TagType": body.get("tag_type", "tag"), "ChangeType": body.get("change_type", "update")}
    elif action == "event":
        fields = body.get("fields")
        if not isinstance(fields, dict) or "Event" not in fields:
            raise ValueError("fields with an Event are required")
    else:
        raise KeyError(f"unknown action {action}")
    fields.setdefault("CreateTime", now())
    response = sim.send_event(callback, fields)
    return {"sent": fields, "portal_status": response.status_code, "portal_answer": response.text[:200]}
