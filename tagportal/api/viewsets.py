"""Shared API view bases: the acting `Actor`, restricted querysets, writes through services."""

from __future__ import annotations

from rest_framework import mixins, viewsets

from org.actors import Actor

from .actors import request_actor

ID_PATH_REGEX = "[0-9]{1,30}"  # longer is no route (404); in range is checked by the lookup (tagportal.ids)

ACTION_BY_METHOD = {"GET": "view", "HEAD": "view", "OPTIONS": "view", "POST": "add", "PUT": "change",
                    "PATCH": "change", "DELETE": "delete"}


class ActorMixin:
    """Gives views `self.actor` (who the call acts as, after `employee=`).

    A viewset looked up by id routes only digits in its `{id}` segment (`/customers/abc/` is a 404 from
    the URL conf, never a ValueError in a lookup); one with another `lookup_field` keeps DRF's default.
    """

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if getattr(cls, "lookup_field", "pk") in ("pk", "id") and not any(
            "lookup_value_regex" in vars(base) for base in cls.__mro__ if base is not ActorMixin
        ):
            cls.lookup_value_regex = ID_PATH_REGEX

    @property
    def actor(self) -> Actor:
        return request_actor(self.request)


class RestrictedViewSet(ActorMixin, viewsets.GenericViewSet):
    """A viewset whose queryset is always `queryset.restrict(actor, action)`.

    Lookups outside the restricted set are 404. Writes are done by the subclass through
    services (override `perform_create`, `perform_update`, `perform_destroy`).
    """

    def get_queryset(self):
        action = ACTION_BY_METHOD.get(self.request.method, "view")
        return super().get_queryset().restrict(self.actor, action)


class RestrictedModelViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    RestrictedViewSet,
):
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
