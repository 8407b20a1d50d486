"""How the portal's taxonomy maps onto WeCom's corp tags (企业客户标签), and back.

WeCom has two levels (tag group → tag); the portal has up to three levels of groups, each of
which may hold tags. The mapping:

- Every portal group that **holds tags** is one WeCom tag group; its WeCom id is the group's
  `external_id`. A group holding only sub-groups has no WeCom counterpart (WeCom groups cannot be
  empty), nor has an empty group until its first tag is pushed.
- The WeCom group's **name is the portal group's path**, joined by "/": 客户画像/行业/制造业.
  WeCom allows 30 characters: a longer path keeps the group's own name and as many of its nearest
  ancestors as fit, after "…/" (…/行业/制造业); if even that is too long, the group's own name
  (≤ 30 by rule 2) alone.
- Every portal tag is one WeCom tag in its group's WeCom group (`external_id` = WeCom's tag id).
- Order: WeCom sorts by `order` descending, the portal ascending: WeCom order =
  `ORDER_BASE - order` (clamped to WeCom's range), and back `order = ORDER_BASE - WeCom order`,
  so a push then a pull gives the same order.
- Coming from WeCom, a group with an unknown id becomes a top-level portal group named as in
  WeCom (an existing group whose mapped name is that name is adopted instead); a known group
  renamed in WeCom renames the portal group (the part after its parent's path, if present).
"""

from __future__ import annotations

from org.actors import Actor

WECOM_ACTOR = Actor(label="企业微信", source="wecom")
"""Who changes the portal on WeCom's behalf (events, pulls). Changes made by it are never pushed
back (tag changes are audited with source `wecom`; taxonomy changes by this actor are ignored)."""

NAME_MAX = 30
SEPARATOR = "/"
ELLIPSIS = "…/"
ORDER_BASE = 100_000
WECOM_ORDER_MAX = 2**32 - 1


def is_wecom(actor) -> bool:
    return actor is not None and actor.employee is None and actor.api_client is None \
        and actor.label == WECOM_ACTOR.label


def wecom_group_name(path: list[str]) -> str:
    """The WeCom group name of a portal group whose path (root first) is `path`."""
    full = SEPARATOR.join(path)
    if len(full) <= NAME_MAX:
        return full
    kept = [path[-1]]
    for name in reversed(path[:-1]):
        candidate = ELLIPSIS + SEPARATOR.join([name, *kept])
        if len(candidate) > NAME_MAX:
            break
        kept.insert(0, name)
    shortened = ELLIPSIS + SEPARATOR.join(kept)
    return shortened if len(kept) > 1 and len(shortened) <= NAME_MAX else path[-1][:NAME_MAX]


def portal_name_from_wecom(wecom_name: str, parent_path: list[str]) -> str:
    """The portal group's own name for a WeCom group name (inverse of `wecom_group_name`)."""
    name = wecom_name.strip()
    if parent_path:
        for prefix in (SEPARATOR.join(parent_path) + SEPARATOR,):
            if name.startswith(prefix):
                return name[len(prefix):]
        if name.startswith(ELLIPSIS):
            return name.rsplit(SEPARATOR, 1)[-1]
    return name[:NAME_MAX]


def wecom_order(order: int) -> int:
    return max(0, min(WECOM_ORDER_MAX, ORDER_BASE - int(order or 0)))


def portal_order(order) -> int:
    try:
        return ORDER_BASE - int(order or 0)
    except (TypeError, ValueError):
        return ORDER_BASE
