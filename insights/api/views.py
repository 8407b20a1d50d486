"""`insights/` and `insights/{panel}/` (数据看板 for BI tools): the dashboard's numbers as JSON.

The caller sees what the acting employee sees (`employee=`, or the session's employee); an API
client at enterprise level sees everything. Views stay thin: parse, call the panel's selector,
shape the answer (`serializers.panel_payload`).
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from tagportal.api.viewsets import ActorMixin
from tagportal.errors import NotFound

from ..registry import get_panel, panels_for
from ..selectors import parse_panel_query
from .serializers import panel_info, panel_payload

QUERY_PARAMETERS = [
    OpenApiParameter("from", str, description="YYYY-MM-DD (local day, included); default 29 days before `to`"),
    OpenApiParameter("to", str, description="YYYY-MM-DD (included); default today"),
    OpenApiParameter("department", int, description="customers followed by members of exactly this department"),
    OpenApiParameter("employee", str, description="act as this employee (userid): their visibility"),
]


class PanelListView(ActorMixin, APIView):
    """The panels the caller may read."""

    @extend_schema(summary="数据看板: panels", parameters=QUERY_PARAMETERS[3:], operation_id="insights_panels",
                   responses={200: OpenApiTypes.OBJECT})
    def get(self, request):
        panels = panels_for(self.actor.employee)
        return Response({"results": [
            {**panel_info(p), "url": request.build_absolute_uri(f"{p.key}/")} for p in panels
        ]})


class PanelView(ActorMixin, APIView):
    """One panel's data: categories, series (one number per category) and the customer-list link of
    each point; `as_of` is the time of the aggregates it was read from (null: counted live)."""

    @extend_schema(summary="数据看板: one panel's data", parameters=QUERY_PARAMETERS, operation_id="insights_panel",
                   responses={200: OpenApiTypes.OBJECT})
    def get(self, request, panel: str):
        viewer = self.actor.employee
        found = get_panel(panel)
        if found is None or not found.allowed(viewer):
            raise NotFound(f"未知的面板：{panel}", details={"panel": panel})
        q = parse_panel_query(request.query_params, viewer=viewer)
        return Response(panel_payload(found, q, found.selector(q)))
