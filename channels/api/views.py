"""`channel-codes/` (API.md "Channel codes"): list (filters, cursor pages), retrieve, create, update,
delete through `channels.services`; `stats/` (per day and per employee), `receivers/` (who receives
the next customer now), and the QR images `qr.png` / `qr.svg` (`?size=8|15|50` cm at 300 dpi).

Who sees and manages which code is `selectors.codes_for` (the restricted queryset); a code out of
reach is 404, one the caller sees but may not change is 403.
"""

from __future__ import annotations

import csv
import io

from django.http import HttpResponse
from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.response import Response

from org.models import Employee
from tagportal.api.pagination import CursorPagination
from tagportal.api.viewsets import RestrictedModelViewSet
from tagportal.errors import ValidationFailed

from .. import qr, services
from ..models import ChannelCode
from ..selectors import code_stats, codes_filtered, parse_range, receivers_now, with_counts
from .serializers import ChannelCodeSerializer, ChannelCodeWriteSerializer, StatsSerializer

_EMPLOYEE = OpenApiParameter("employee", str, description="以该成员的身份（可见范围与权限）调用")
_FILTERS = [
    _EMPLOYEE,
    OpenApiParameter("q", str, description="名称或 state 包含"),
    OpenApiParameter("state", str),
    OpenApiParameter("enabled", bool),
    OpenApiParameter("receiver", str, description="接待或备用成员 userid"),
    OpenApiParameter("department", int, description="所属部门 id"),
    OpenApiParameter("tag", int, description="带此标签的渠道活码"),
]
_RANGE = [_EMPLOYEE, OpenApiParameter("from", str, description="YYYY-MM-DD（北京时间，含）"),
          OpenApiParameter("to", str, description="YYYY-MM-DD（含）；默认最近 30 天")]
_SIZE = [_EMPLOYEE, OpenApiParameter("size", int, enum=list(qr.SIZES_CM), description="打印尺寸（厘米，300 dpi）")]


def customers_url(request, code: ChannelCode) -> str:
    """The customer list filtered by the code's state (API)."""
    return request.build_absolute_uri(reverse("customer-list") + f"?state={code.state}")


def stats_csv(code: ChannelCode, stats) -> HttpResponse:
    """The statistics as a CSV file (per day, then per employee)."""
    buffer = io.StringIO()
    buffer.write("\ufeff")  # Excel reads UTF-8 with a BOM
    writer = csv.writer(buffer)
    writer.writerow(["日期", "新增", "流失", "仍在跟进"])
    for day in stats.days:
        writer.writerow([day["date"], day["added"], day["lost"], day["still_followed"]])
    writer.writerow([])
    writer.writerow(["成员", "姓名", "新增", "流失", "仍在跟进"])
    for emp in stats.employees:
        writer.writerow([emp["employee"], emp["name"], emp["added"], emp["lost"], emp["still_followed"]])
    response = HttpResponse(buffer.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = (
        f'attachment; filename="channel-{code.state}-{stats.start.isoformat()}-{stats.end.isoformat()}.csv"')
    return response


def qr_response(code: ChannelCode, request, kind: str) -> HttpResponse:
    try:
        cm = qr.size_cm(request.GET.get("size"))
    except ValueError:
        raise ValidationFailed("size 必须是 8、15 或 50（厘米）。", details={"size": request.GET.get("size")})
    render = qr.render_png if kind == "png" else qr.render_svg
    image = render(qr.qr_payload(code, request), cm=cm, filename=code.state)
    response = HttpResponse(image.content, content_type=image.content_type)
    disposition = "attachment" if request.GET.get("download") else "inline"
    response["Content-Disposition"] = f'{disposition}; filename="{image.filename}"'
    response["Cache-Control"] = "private, max-age=300"
    return response


@extend_schema_view(
    list=extend_schema(parameters=_FILTERS),
    retrieve=extend_schema(parameters=[_EMPLOYEE]),
    create=extend_schema(request=ChannelCodeWriteSerializer, responses={201: ChannelCodeSerializer}),
    partial_update=extend_schema(request=ChannelCodeWriteSerializer, responses=ChannelCodeSerializer),
)
class ChannelCodeViewSet(RestrictedModelViewSet):
    """渠道活码."""

    queryset = ChannelCode.objects.all()
    serializer_class = ChannelCodeSerializer
    pagination_class = CursorPagination
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self):
        qs = super().get_queryset()
        if self.action == "list":
            qs = codes_filtered(qs, self.request.query_params)
        return with_counts(qs).select_related("owner").prefetch_related("employees", "backup_employees", "tags")

    def _fresh(self, code):
        qs = with_counts(ChannelCode.objects.filter(pk=code.pk)).select_related("owner")
        return self.get_serializer(qs.prefetch_related("employees", "backup_employees", "tags").get()).data

    def _code_for_change(self):
        """The code if the caller sees it (else 404); the service answers 403 if they may not change it."""
        from django.shortcuts import get_object_or_404

        return get_object_or_404(ChannelCode.objects.restrict(self.actor, "view"), pk=self.kwargs["pk"])

    def create(self, request, *args, **kwargs):
        code = services.channel_code_create(actor=self.actor, data=_body(request))
        return Response(self._fresh(code), status=status.HTTP_201_CREATED)

    def update(self, request, *args, **kwargs):
        code = services.channel_code_update(actor=self.actor, code=self._code_for_change(), data=_body(request))
        return Response(self._fresh(code))

    def destroy(self, request, *args, **kwargs):
        services.channel_code_delete(actor=self.actor, code=self._code_for_change())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(parameters=[*_RANGE, OpenApiParameter("export", str, enum=["csv"], description="csv: 下载 CSV")],
                   responses=StatsSerializer)
    @action(detail=True, methods=["get"])
    def stats(self, request, pk=None):
        code = self.get_object()
        start, end = parse_range(request.query_params)
        stats = code_stats(code, start=start, end=end)
        if request.query_params.get("export") == "csv":
            return stats_csv(code, stats)
        return Response({"from": start.isoformat(), "to": end.isoformat(), "days": stats.days,
                         "employees": stats.employees, "totals": stats.totals,
                         "customers_url": customers_url(request, code)})

    @extend_schema(parameters=[_EMPLOYEE])
    @action(detail=True, methods=["get"])
    def receivers(self, request, pk=None):
        """Who receives the next customer now (rotation, daily limit, working hours, backups)."""
        receivers = receivers_now(self.get_object())
        userids = dict(Employee.objects.filter(pk__in=list(receivers.today)).values_list("pk", "userid"))
        return Response({
            "next": receivers.next.userid if receivers.next else None,
            "employees": [e.userid for e in receivers.employees],
            "backup": receivers.backup,
            "reason": receivers.reason,
            "today": {userids[k]: v for k, v in receivers.today.items() if k in userids},
        })

    @extend_schema(parameters=_SIZE, responses={(200, "image/png"): bytes})
    def qr_png(self, request, pk=None):
        return qr_response(self.get_object(), request, "png")

    @extend_schema(parameters=_SIZE, responses={(200, "image/svg+xml"): str})
    def qr_svg(self, request, pk=None):
        return qr_response(self.get_object(), request, "svg")


def _body(request):
    data = request.data
    if hasattr(data, "dict") and not isinstance(data, dict):
        data = data.dict()
    if isinstance(data, dict):
        data = {k: v for k, v in data.items() if k != "employee"}  # `employee` names the acting employee
    return data
