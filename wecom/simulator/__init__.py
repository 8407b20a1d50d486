"""A WeCom stand-in for tests and demos: the API subset the portal uses, served from memory over
real HTTP, and encrypted callback events sent to a running portal. See `server.WeComSimulator`;
routes register in `routes_<concern>.py` modules with `registry.route`."""

from .registry import SimError, SimRequest, route
from .server import WeComSimulator
from .state import CorpTag, CorpTagGroup, Department, ExternalContact, FollowUser, SimState, User

__all__ = [
    "CorpTag",
    "CorpTagGroup",
    "Department",
    "ExternalContact",
    "FollowUser",
    "SimError",
    "SimRequest",
    "SimState",
    "User",
    "WeComSimulator",
    "route",
]
