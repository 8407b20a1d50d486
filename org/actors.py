"""Who is acting: an employee, an API client (for an employee or at enterprise level), or automation.

Every service that writes takes an `Actor`. Rights come from `employee` when one is named;
an API client or automation without an employee acts at enterprise level.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .models import Role

if TYPE_CHECKING:
    from .models import ApiClient, Employee


@dataclass(frozen=True)
class Actor:
    """The one doing a thing. `label` names automation (a rule, a channel code) for the audit."""

    employee: Employee | None = None
    api_client: ApiClient | None = None
    label: str = ""
    # The audit source automation's tag changes carry when a service has no `source` argument
    # (e.g. taxonomy deletes by the WeCom connection: "wecom"); empty means "manual"/"api".
    source: str = ""

    @property
    def is_enterprise(self) -> bool:
        """No employee named: an API client, automation or the system, with enterprise rights."""
        return self.employee is None

    def has_role(self, *roles: str) -> bool:
        return self.is_enterprise or self.employee.has_role(*roles)

    @property
    def manages_taxonomy(self) -> bool:
        """May define groups and tags, whatever their scope, and apply locked tags."""
        return self.has_role(Role.ENTERPRISE_ADMIN, Role.TAG_ADMIN)

    @property
    def can_write(self) -> bool:
        return self.api_client is None or not self.api_client.read_only

    def __str__(self) -> str:
        if self.employee is not None:
            return str(self.employee)
        if self.api_client is not None:
            return f"API:{self.api_client.name}"
        return self.label or "system"


SYSTEM = Actor(label="system")


# ---------------------------------------------------------------- automation labels, for people

# The audit stores automation's `label` as written when the change was made (a rule's, a channel
# code's, "system"); pages show it through `actor_label_display` in the reader's language. Each app
# registers the labels it writes, from its AppConfig.ready().
_label_formats: list[tuple[re.Pattern, Callable[[re.Match], str]]] = []


def register_actor_label(pattern: str, render: Callable[[re.Match], str]) -> None:
    """`render(match)` shows a stored label that matches `pattern` (the whole label), translated."""
    compiled = re.compile(pattern)
    if all(p.pattern != compiled.pattern for p, _r in _label_formats):
        _label_formats.append((compiled, render))


def actor_label_display(label: str) -> str:
    """A stored automation label as the reader reads it (`渠道活码「车展」#3` → Channel code “车展”);
    a label nobody registered is shown as stored."""
    for pattern, render in _label_formats:
        match = pattern.fullmatch(label or "")
        if match:
            return str(render(match))
    return label


def register_builtin_labels() -> None:
    """The labels the org app itself gives automation: the system, the demo seeder."""
    from django.utils.translation import gettext as _

    register_actor_label(r"system", lambda m: _("系统"))
    register_actor_label(r"seed_demo(:\w+)?", lambda m: _("演示数据"))
