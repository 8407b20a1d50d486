"""Shared API view bases: the acting `Actor`, restricted querysets, writes through services."""

from __future__ import annotations

from rest_framework import mixins, viewsets

from org.actors import Actor

from .actors import request_actor

ACTION_BY_METHOD = {"GET": "view", "HEAD": "view", "OPTIONS": "view", "POST": "add", "PUT": "change",
                    "PATCH": "change", "DELETE": "delete"}


class ActorMixin:
    """Gives views `self.actor` (who the call acts as, after `employee=`)."""

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
