"""The restricted-queryset pattern: one `restrict(actor, action)` per model decides what a caller
may see ("view") or change ("change", "delete"). The admin and the API both call it."""

from __future__ import annotations

from django.db import models


class RestrictedQuerySet(models.QuerySet):
    """Subclasses implement `restrict`; objects outside it are 404 to the caller, never 403."""

    def restrict(self, actor, action: str = "view"):
        raise NotImplementedError(f"{type(self).__name__} must define restrict()")
