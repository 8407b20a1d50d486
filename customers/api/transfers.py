"""`transfers/`: 客户继承 over the API (API.md). HR, enterprise admins and enterprise-level API clients.

`POST transfers/` validates and queues the transfer job (202 `{"job", "transfer"}`);
`POST transfers/preview/` answers what it would do without doing it; `GET transfers/{id}/`
gives the per-customer outcomes.
"""

from __future__ import annotations

from django.db.models import Count
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from org.models import Employee
from tagportal.api.pagination import CursorPagination
from tagportal.api.viewsets import RestrictedViewSet
from tagportal.errors import NotAllowed, ValidationFailed

from .. import transfers
from ..models import Transfer, TransferItem


class TransferInputSerializer(serializers.Serializer):
    """The body of `POST transfers/` (and `transfers/preview/`)."""

    from_employee = serializers.CharField(help_text="原跟进成员 userid")
    to_employees = serializers.ListField(
        child=serializers.CharField(), help_text="继承人 userid 列表", allow_empty=True
    )
    keep_portrait = serializers.BooleanField(default=True, help_text="保留完整画像")
    customers = serializers.JSONField(
        required=False, allow_null=True, default=None,
        help_text='null = all; or customer ids; or [{"customer": id, "to_employee": userid}] to choose per customer',
    )
    mark_departed = serializers.BooleanField(default=True, help_text="标记离职 (离职继承); false = 在职继承")
    employee = serializers.CharField(required=False, help_text="act as this employee")


def _employees(userids: list[str], field: str) -> list[Employee]:
    found = {e.userid: e for e in Employee.objects.filter(userid__in=userids)}
    unknown = [u for u in userids if u not in found]
    if unknown:
        raise ValidationFailed(f"Unknown employee(s): {', '.join(unknown)}.", details={field: unknown})
    return [found[u] for u in userids]


def transfer_arguments(data: dict) -> dict:
    """Turn the validated body into `transfer_start` / `transfer_preview` keyword arguments."""
    from_employee = _employees([data["from_employee"]], "from_employee")[0]
    to_employees = _employees(list(data["to_employees"]), "to_employees")
    raw = data.get("customers")
    customer_ids, assignment = None, None
    if raw is not None:
        if not isinstance(raw, list):
            raise ValidationFailed("'customers' must be null or a list.", details={"customers": raw})
        customer_ids, chosen = [], {}
        for n, entry in enumerate(raw):
            if isinstance(entry, dict):
                cid, userid = entry.get("customer"), entry.get("to_employee")
            else:
                cid, userid = entry, None
            if isinstance(cid, bool) or not isinstance(cid, int):
                raise ValidationFailed("Customer ids must be integers.", details={"customers": {"index": n}})
            customer_ids.append(cid)
            if userid is not None:
                chosen[cid] = str(userid)
        if chosen:
            people = {e.userid: e for e in _employees(sorted(set(chosen.values())), "customers")}
            assignment = {cid: people[u] for cid, u in chosen.items()}
    return {
        "from_employee": from_employee,
        "to_employees": to_employees,
        "keep_portrait": data["keep_portrait"],
        "customer_ids": customer_ids,
        "assignment": assignment,
        "mark_departed": data["mark_departed"],
    }


def _status(transfer: Transfer) -> str:
    if transfer.job_id is not None:
        return transfer.job.status
    return "succeeded" if transfer.finished_at else "pending"


class TransferSerializer(serializers.ModelSerializer):
    """A transfer: who, from whom, to whom, when, the option chosen, status and outcome counts."""

    from_employee = serializers.SlugRelatedField(slug_field="userid", read_only=True)
    to_employees = serializers.SlugRelatedField(slug_field="userid", many=True, read_only=True)
    status = serializers.SerializerMethodField()
    created_by = serializers.SerializerMethodField()
    outcomes = serializers.SerializerMethodField()

    class Meta:
        model = Transfer
        fields = ["id", "job", "status", "from_employee", "to_employees", "keep_portrait", "mark_departed",
                  "customer_ids", "created_by", "created_at", "finished_at", "outcomes"]

    def get_status(self, obj) -> str:
        return _status(obj)

    def get_created_by(self, obj) -> str:
        if obj.created_by_employee_id:
            return obj.created_by_employee.userid
        return f"API:{obj.created_by_client.name}" if obj.created_by_client_id else ""

    def get_outcomes(self, obj) -> dict:
        counts = getattr(obj, "_outcomes", None)
        if counts is None:
            counts = dict(obj.items.values_list("outcome").annotate(n=Count("id")).values_list("outcome", "n"))
        return counts


class TransferDetailSerializer(TransferSerializer):
    items = serializers.SerializerMethodField()

    class Meta(TransferSerializer.Meta):
        fields = [*TransferSerializer.Meta.fields, "items"]

    def get_items(self, obj) -> list[dict]:
        rows = TransferItem.objects.filter(transfer=obj).order_by("id").values_list(
            "customer_id", "customer__external_userid", "customer__name", "to_employee__userid", "outcome", "detail",
            "done_at",
        )
        keys = ("customer", "external_userid", "name", "to_employee", "outcome", "detail", "done_at")
        return [dict(zip(keys, row, strict=True)) for row in rows]


class TransferViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, RestrictedViewSet):
    """客户继承: hand an employee's customers to inheritors (离职继承 / 在职继承)."""

    queryset = transfers.TransferQuerySet(Transfer).select_related(
        "from_employee", "job", "created_by_employee", "created_by_client"
    ).prefetch_related("to_employees")
    serializer_class = TransferSerializer
    pagination_class = CursorPagination
    http_method_names = ["get", "post", "head", "options"]

    def get_serializer_class(self):
        return TransferDetailSerializer if self.action == "retrieve" else TransferSerializer

    def get_queryset(self):
        qs = super().get_queryset()
        userid = self.request.query_params.get("from_employee")
        if self.action == "list" and userid:
            qs = qs.filter(from_employee__userid=userid)
        return qs

    def _check_allowed(self) -> None:
        # Before looking at the body: a caller who may not transfer learns nothing from it.
        if not transfers.transfer_allowed(self.actor):
            raise NotAllowed("Only HR or an enterprise admin may transfer customers.")

    @extend_schema(
        request=TransferInputSerializer,
        responses={202: inline_serializer("TransferStarted", {"job": serializers.IntegerField(),
                                                              "transfer": serializers.IntegerField()})},
    )
    def create(self, request, *args, **kwargs):
        self._check_allowed()
        body = TransferInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        transfer = transfers.transfer_start(actor=self.actor, **transfer_arguments(body.validated_data))
        return Response({"job": transfer.job_id, "transfer": transfer.pk}, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=TransferInputSerializer, parameters=[OpenApiParameter("employee", str)])
    @action(detail=False, methods=["post"])
    def preview(self, request):
        """What the transfer would do (counts per inheritor, conflicts, errors), writing nothing."""
        self._check_allowed()
        body = TransferInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        plan = transfers.transfer_preview(actor=self.actor, **transfer_arguments(body.validated_data))
        return Response(plan.as_dict())

