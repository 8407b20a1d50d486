"""Hooks through which the apps above `channels` (the WeCom connection) follow channel codes.

`channels` never imports `wecom`. The WeCom side registers handlers here from its own
`AppConfig.ready()` and turns them into contact-way calls (`add_contact_way`,
`update_contact_way`, `del_contact_way`):

    from channels.hooks import register_code_saved_handler

    @register_code_saved_handler
    def push_contact_way(*, code, created) -> None: ...

- code saved `(*, code, created)`: a code was created or changed (name, state, employees, backups,
  limit, hours, welcome message, skip-verify, enabled). Called inside the service's transaction.
- code deleted `(*, code)`: about to be deleted (its `config_id` is still there). Inside the transaction.
- receivers changed `(*, code, receivers)`: who receives the code's customers right now changed
  (someone reached the daily limit, a new Asia/Shanghai day began, working hours started or ended,
  the employees were edited). `receivers` is a `channels.selectors.Receivers` (`employees`, in
  rotation order; `backup`; `reason` when nobody can). Inside the transaction that changed it.

A handler that needs to call WeCom should queue that work (an outbox row or
`transaction.on_commit`), not call the network inside the transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .models import ChannelCode
    from .selectors import Receivers

Handler = Callable[..., None]

_code_saved: list[Handler] = []
_code_deleted: list[Handler] = []
_receivers_changed: list[Handler] = []


def _register(registry: list[Handler], handler: Handler) -> Handler:
    if handler not in registry:
        registry.append(handler)
    return handler


def register_code_saved_handler(handler: Handler) -> Handler:
    """Register `handler(*, code, created)`, called when a code is created or changed."""
    return _register(_code_saved, handler)


def register_code_deleted_handler(handler: Handler) -> Handler:
    """Register `handler(*, code)`, called right before a code is deleted."""
    return _register(_code_deleted, handler)


def register_receivers_changed_handler(handler: Handler) -> Handler:
    """Register `handler(*, code, receivers)`, called when who receives the code's customers changes."""
    return _register(_receivers_changed, handler)


def run_code_saved_handlers(*, code: ChannelCode, created: bool) -> None:
    for handler in _code_saved:
        handler(code=code, created=created)


def run_code_deleted_handlers(*, code: ChannelCode) -> None:
    for handler in _code_deleted:
        handler(code=code)


def run_receivers_changed_handlers(*, code: ChannelCode, receivers: Receivers) -> None:
    for handler in _receivers_changed:
        handler(code=code, receivers=receivers)
