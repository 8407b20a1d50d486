"""Routes behind the mobile sidebar: the app's jsapi ticket and WeCom OAuth's code → userid.

A code is `simcode-<userid>` for a user of the simulated corp (`sim.oauth_code(userid)` makes one);
anything else is WeCom's "invalid code" (40029)."""

from __future__ import annotations

from .registry import INVALID_PARAMETER, SimError, route

TICKET = "sim-agent-jsapi-ticket"


@route("GET", "ticket/get")
def ticket_get(sim, req):
    if req.params.get("type") != "agent_config":
        raise SimError(INVALID_PARAMETER, "type must be agent_config")
    return {"ticket": TICKET, "expires_in": 7200}


@route("GET", "auth/getuserinfo")
def auth_getuserinfo(sim, req):
    code = req.require("code")
    userid = code.removeprefix("simcode-") if code.startswith("simcode-") else ""
    if not userid or userid not in sim.state.users:
        raise SimError(40029, "invalid code")
    return {"userid": userid}
