"""Events from WeCom: parsing the decrypted XML (defusedxml) and the handler registry.

Handlers live in `wecom/handlers/<concern>.py` (every module there is imported when the app is
ready) and register by event and change type:

    from wecom.events import event_handler

    @event_handler("change_external_contact", "add_external_contact", "edit_external_contact")
    def upsert_contact(event) -> None: ...        # event: a wecom.models.WeComEvent

    @event_handler("change_external_tag")          # no change type: every change type of the event
    def refresh_tags(event) -> None: ...

A handler runs inside the event's transaction: what it writes commits together with the event
being marked processed, and rolls back with it when it raises (the event is then retried).
Side effects outside the database that must happen at most once (a welcome message) go in
`transaction.on_commit`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

if TYPE_CHECKING:
    from .models import WeComEvent

EventHandler = Callable[["WeComEvent"], None]

_handlers: dict[tuple[str, str | None], EventHandler] = {}

MAX_FIELD_LENGTH = 4096


class EventParseError(ValueError):
    """The decrypted message is not an event we can read (bad XML, DTD/entities, no Event)."""

    def __init__(self, message: str, *, reason: str = "bad_xml"):
        super().__init__(message)
        self.reason = reason


def event_handler(event: str, *change_types: str) -> Callable[[EventHandler], EventHandler]:
    """Register a handler for `event` (WeCom's `Event`) and the given `ChangeType`s (none: all)."""

    def register(handler: EventHandler) -> EventHandler:
        for change_type in change_types or (None,):
            key = (event, change_type)
            existing = _handlers.get(key)
            if existing is not None and existing is not handler and _name(existing) != _name(handler):
                raise ValueError(f"two handlers for WeCom event {key}: {_name(existing)}, {_name(handler)}")
            _handlers[key] = handler
        return handler

    return register


def _name(handler: EventHandler) -> str:
    return f"{handler.__module__}.{handler.__qualname__}"


def handler_for(event: str, change_type: str = "") -> EventHandler | None:
    return _handlers.get((event, change_type or None)) or _handlers.get((event, None))


def registered() -> dict[tuple[str, str | None], str]:
    """What is handled, for the status page and tests."""
    ordered = sorted(_handlers.items(), key=lambda kv: (kv[0][0], kv[0][1] or ""))
    return {key: _name(handler) for key, handler in ordered}


def _element_value(element: Element) -> Any:
    children = list(element)
    if not children:
        return (element.text or "").strip()
    out: dict[str, Any] = {}
    for child in children:
        value = _element_value(child)
        if child.tag in out:  # repeated elements become a list
            if not isinstance(out[child.tag], list):
                out[child.tag] = [out[child.tag]]
            out[child.tag].append(value)
        else:
            out[child.tag] = value
    return out


def parse_xml(text: str | bytes, *, root: str = "xml") -> dict[str, Any]:
    """A WeCom XML document as a dict of its root's children. DTDs (so entity expansion and
    external entities) are refused, as is anything that is not `<xml>...</xml>`."""
    try:
        element = fromstring(text, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise EventParseError(f"forbidden XML construct: {type(exc).__name__}", reason="forbidden_xml") from exc
    except (ParseError, ValueError, TypeError) as exc:
        raise EventParseError("not well-formed XML", reason="bad_xml") from exc
    if element.tag != root:
        raise EventParseError(f"root element is <{element.tag}>, not <{root}>", reason="bad_xml")
    value = _element_value(element)
    return value if isinstance(value, dict) else {}


def parse_event(text: str) -> dict[str, Any]:
    """The fields of a decrypted event; it must name its `Event` (MsgType `event`)."""
    fields = parse_xml(text)
    event = fields.get("Event")
    if not isinstance(event, str) or not event.strip():
        raise EventParseError("no Event in the message", reason="no_event")
    for key, value in fields.items():
        if isinstance(value, str) and len(value) > MAX_FIELD_LENGTH:
            raise EventParseError(f"field {key} too long", reason="field_too_long")
    return fields


def dedupe_key(text: str) -> str:
    """The key a WeCom retry shares with its first delivery: sha256 of the whole decrypted XML."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
