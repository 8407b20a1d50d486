"""Domain errors: raised by services, mapped once to the API error shape and to admin messages.

Each carries a stable `code`, a human `message` and optional `details` (which field or
items were wrong). The HTTP status lives here so views never decide it themselves.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """Base of every error a service raises on purpose."""

    status_code = 400
    code = "invalid"

    def __init__(self, message: str, *, details: Any = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.details = details
        if code:
            self.code = code

    def __str__(self) -> str:
        return self.message


class ValidationFailed(DomainError):
    """Invalid input: a bad field or item. `details` names the field or the items."""

    status_code = 400
    code = "invalid"


class NotAllowed(DomainError):
    """The caller may see the object but may not do this to it."""

    status_code = 403
    code = "forbidden"


class NotFound(DomainError):
    """Unknown object, or one the caller may not see (never leak its existence)."""

    status_code = 404
    code = "not_found"


class Conflict(DomainError):
    """The request clashes with the current state (a transfer already running, ...)."""

    status_code = 409
    code = "conflict"


class TooLarge(DomainError):
    """The request asks for more than one call may do."""

    status_code = 413
    code = "too_large"
