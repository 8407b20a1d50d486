"""Who is acting: an employee, an API client (for an employee or at enterprise level), or automation.

Every service that writes takes an `Actor`. Rights come from `employee` when one is named;
an API client or automation without an employee acts at enterprise level.
"""

from __future__ import annotations

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
