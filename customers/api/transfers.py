"""`transfers/`: 客户继承 over the API (API.md). HR, enterprise admins and enterprise-level API clients.

`POST transfers/` validates and queues the transfer job (202 `{"job", "transfer"}`);
`POST transfers/preview/` answers what it would do without doing it; `GET transfers/{id}/`
gives the outcome counts and the first page of per-customer outcomes, `GET transfers/{id}/items/`
all of them, cursor-paginated. Personal tags appear as counts only (rule 9).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from django.db.models import Count, Q
from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from org.models import Employee
from tagportal.api.pagination import CursorPagination, IdCursorPagination
from tagportal.api.viewsets import RestrictedViewSet
from tagportal.errors import NotAllowed, ValidationFailed
from tagportal.ids import is_id

from .. import transfers
from ..models import Transfer, TransferItem, TransferOutcome


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
            if not isinstance(cid, int) or not is_id(cid):  # range-checked (tagportal.ids)
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

    def get_outcomes(self, obj) -> dict[str, int]:
        """{outcome: n} for the outcomes that occur; annotated by the viewset's queryset."""
        if not hasattr(obj, f"n_{TransferOutcome.values[0]}"):
            return dict(obj.items.values_list("outcome").annotate(n=Count("id")).values_list("outcome", "n"))
        return {value: n for value in TransferOutcome.values if (n := getattr(obj, f"n_{value}"))}


class TransferItemSerializer(serializers.ModelSerializer):
    """One customer of a transfer: its inheritor and outcome. `detail` holds counts and reasons only."""

    external_userid = serializers.CharField(source="customer.external_userid", read_only=True)
    name = serializers.CharField(source="customer.name", read_only=True)
    to_employee = serializers.SlugRelatedField(slug_field="userid", read_only=True)

    class Meta:
        model = TransferItem
        fields = ["customer", "external_userid", "name", "to_employee", "outcome", "detail", "done_at"]


class TransferDetailSerializer(TransferSerializer):
    """The transfer with the first page of its per-customer items; `items_next` (null at the end)
    continues at `transfers/{id}/items/`."""

    items = TransferItemSerializer(many=True, read_only=True, source="items_page")
    items_next = serializers.CharField(read_only=True, allow_null=True, source="items_next_link")

    class Meta(TransferSerializer.Meta):
        fields = [*TransferSerializer.Meta.fields, "items", "items_next"]


def _outcome_counts() -> dict:
    return {f"n_{value}": Count("items", filter=Q(items__outcome=value)) for value in TransferOutcome.values}


class TransferViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, RestrictedViewSet):
    """客户继承: hand an employee's customers to inheritors (离职继承 / 在职继承)."""

    queryset = transfers.TransferQuerySet(Transfer).select_related(
        "from_employee", "job", "created_by_employee", "created_by_client"
    ).prefetch_related("to_employees")
    serializer_class = TransferSerializer
    pagination_class = CursorPagination
    http_method_names = ["get", "post", "head", "options"]

    def get_serializer_class(self):
        if self.action == "items":
            return TransferItemSerializer
        return TransferDetailSerializer if self.action == "retrieve" else TransferSerializer

    def get_queryset(self):
        qs = super().get_queryset()
        if self.action in ("list", "retrieve"):
            qs = qs.annotate(**_outcome_counts())  # counts in the same query, not one per row
        userid = self.request.query_params.get("from_employee")
        if self.action == "list" and userid:
            qs = qs.filter(from_employee__userid=userid)
        return qs

    def _items(self, transfer: Transfer):
        return TransferItem.objects.filter(transfer=transfer).select_related("customer", "to_employee")

    def retrieve(self, request, *args, **kwargs):
        transfer = self.get_object()
        paginator = IdCursorPagination()
        transfer.items_page = paginator.paginate_queryset(self._items(transfer), request, view=self)
        next_link = paginator.get_next_link()
        if next_link:
            query = urlsplit(next_link).query
            items_url = request.build_absolute_uri(reverse("transfer-items", args=[transfer.pk]))
            next_link = f"{items_url}?{query}"
        transfer.items_next_link = next_link
        return Response(self.get_serializer(transfer).data)

    @extend_schema(responses=TransferItemSerializer(many=True))
    @action(detail=True, methods=["get"], pagination_class=IdCursorPagination)
    def items(self, request, pk=None):
        """Per-customer outcomes, by item id, cursor-paginated (`{"results", "next"}`)."""
        transfer = self.get_object()
        page = self.paginate_queryset(self._items(transfer))
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

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

