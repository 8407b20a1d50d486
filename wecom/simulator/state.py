"""The simulated corp's state, in memory: departments, users, external contacts and their follow
users (tags, state, remark), corp tag groups, contact ways, transfers, welcome codes, and a log of
every API call (for tests). One `threading.RLock` guards it; route handlers run under it."""

from __future__ import annotations

import itertools
import secrets
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any


def now() -> int:
    return int(time.time())


@dataclass
class Department:
    id: int
    name: str
    parentid: int = 0
    order: int = 0

    def as_json(self) -> dict:
        return asdict(self)


@dataclass
class User:
    userid: str
    name: str
    department: list[int] = field(default_factory=lambda: [1])
    status: int = 1  # 1 active, 2 disabled, 4 not activated, 5 quit

    def as_json(self) -> dict:
        return asdict(self)


@dataclass
class FollowUser:
    """One follow relation as WeCom keeps it (follow_user of externalcontact/get)."""

    userid: str
    remark: str = ""
    description: str = ""
    createtime: int = field(default_factory=now)
    tags: list[dict] = field(default_factory=list)  # [{group_name, tag_name, tag_id, type}]
    state: str = ""
    add_way: int = 1
    oper_userid: str = ""

    def as_json(self) -> dict:
        data = asdict(self)
        if not data["state"]:
            data.pop("state")
        return data

    def follow_info(self) -> dict:
        """The shape batch/get_by_user answers: tag ids instead of tag dicts."""
        data = self.as_json()
        data["tag_id"] = [t["tag_id"] for t in data.pop("tags") if t.get("type", 1) == 1]
        return data


@dataclass
class ExternalContact:
    external_userid: str
    name: str
    type: int = 1  # 1 WeChat user, 2 WeCom user
    gender: int = 0
    avatar: str = ""
    corp_name: str = ""
    follow_users: list[FollowUser] = field(default_factory=list)

    def as_json(self) -> dict:
        data = {k: v for k, v in asdict(self).items() if k != "follow_users"}
        if self.type != 2:
            data.pop("corp_name")
        return data

    def follower(self, userid: str) -> FollowUser | None:
        return next((f for f in self.follow_users if f.userid == userid), None)


@dataclass
class CorpTag:
    id: str
    name: str
    order: int = 0
    create_time: int = field(default_factory=now)
    deleted: bool = False

    def as_json(self) -> dict:
        return asdict(self)


@dataclass
class CorpTagGroup:
    group_id: str
    group_name: str
    order: int = 0
    create_time: int = field(default_factory=now)
    deleted: bool = False
    tag: list[CorpTag] = field(default_factory=list)
    created_by_app: bool = False

    def as_json(self) -> dict:
        data = {k: v for k, v in asdict(self).items() if k not in ("tag", "created_by_app")}
        data["tag"] = [t.as_json() for t in self.tag]
        return data


@dataclass
class Call:
    """One API request the simulator answered (the access token is not kept)."""

    method: str
    path: str
    params: dict[str, str]
    body: dict[str, Any]
    errcode: int
    at: float = field(default_factory=time.time)


class SimState:
    """Everything the simulated corp knows. Mutate under `lock`."""

    def __init__(self, *, corp_id: str, secret: str, token: str, aes_key: str, agent_id: str = ""):
        self.lock = threading.RLock()
        self.corp_id = corp_id
        self.secret = secret
        self.token = token
        self.aes_key = aes_key
        self.agent_id = agent_id
        self.departments: dict[int, Department] = {1: Department(id=1, name="总部", parentid=0)}
        self.users: dict[str, User] = {}
        self.contacts: dict[str, ExternalContact] = {}
        self.tag_groups: dict[str, CorpTagGroup] = {}
        self.contact_ways: dict[str, dict] = {}
        self.transfers: list[dict] = []
        self.welcome_codes: dict[str, dict] = {}  # code -> {userid, external_userid, used}
        self.welcome_messages: list[dict] = []
        self.tokens: dict[str, float] = {}  # access_token -> expiry (time.time())
        self.calls: list[Call] = []
        self.failures: list[list] = []  # [path, errcode, remaining]
        self._ids = itertools.count(1)

    # ---------------------------------------------------------------- helpers

    def new_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):06d}{secrets.token_hex(3)}"

    def issue_token(self, ttl: int = 7200) -> str:
        token = secrets.token_urlsafe(32)
        self.tokens[token] = time.time() + ttl
        return token

    def add_department(self, id: int, name: str, parentid: int = 1, order: int = 0) -> Department:
        with self.lock:
            dept = self.departments[id] = Department(id=id, name=name, parentid=parentid, order=order)
            return dept

    def add_user(self, userid: str, name: str = "", department: list[int] | None = None) -> User:
        with self.lock:
            user = self.users.get(userid)
            if user is None:
                user = self.users[userid] = User(userid=userid, name=name or userid, department=department or [1])
            return user

    def add_contact(
        self,
        *,
        userid: str,
        external_userid: str | None = None,
        name: str = "",
        type: int = 1,
        gender: int = 0,
        corp_name: str = "",
        remark: str = "",
        description: str = "",
        state: str = "",
        add_way: int = 1,
        tags: list[dict] | None = None,
        welcome_code: bool = True,
        createtime: int | None = None,
    ) -> tuple[ExternalContact, FollowUser, str]:
        """A customer adds `userid` (or is added): the contact (new or existing) gains a follow
        user. Returns (contact, follow_user, welcome_code or "")."""
        with self.lock:
            self.add_user(userid)
            external_userid = external_userid or self.new_id("wmSIM")
            contact = self.contacts.get(external_userid)
            if contact is None:
                contact = ExternalContact(
                    external_userid=external_userid, name=name or external_userid, type=type, gender=gender,
                    corp_name=corp_name,
                )
                self.contacts[external_userid] = contact
            elif name:
                contact.name = name
            follower = contact.follower(userid)
            if follower is None:
                follower = FollowUser(userid=userid)
                contact.follow_users.append(follower)
            follower.remark, follower.description, follower.state = remark, description, state
            follower.add_way, follower.tags = add_way, list(tags or [])
            follower.createtime = createtime or now()
            code = ""
            if welcome_code:
                code = self.new_id("WELCOME")
                self.welcome_codes[code] = {"userid": userid, "external_userid": external_userid, "used": False,
                                            "issued_at": time.time()}
            return contact, follower, code

    def remove_follower(self, *, userid: str, external_userid: str) -> bool:
        with self.lock:
            contact = self.contacts.get(external_userid)
            if contact is None or contact.follower(userid) is None:
                return False
            contact.follow_users = [f for f in contact.follow_users if f.userid != userid]
            return True

    def find_tag(self, tag_id: str) -> tuple[CorpTagGroup, CorpTag] | None:
        for group in self.tag_groups.values():
            for tag in group.tag:
                if tag.id == tag_id and not tag.deleted:
                    return group, tag
        return None

    def calls_to(self, path: str) -> list[Call]:
        with self.lock:
            return [c for c in self.calls if c.path == path.strip("/")]
