"""`tagging/bulk/` and `jobs/` (API.md): bulk tagging, synchronously for explicit operations or as a
job for a filter, and the jobs themselves (progress, cancel, undo).

Views stay thin: they shape the body, resolve `external_userid`s in one query, and call
`customers_tags_bulk_update` / `bulk_tagging_start` / `job_cancel` / `job_undo`.
"""

from __future__ import annotations

from django.conf import settings
from django.db import transaction
from django.db.models import Prefetch
from django.urls import reverse
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from tagportal.api.pagination import CursorPagination
from tagportal.api.viewsets import ActorMixin
from tagportal.errors import TooLarge, ValidationFailed
from tagportal.ids import MAX_ID, is_id

from ..jobs import (
    bulk_tagging_start,
    job_actor_label,
    job_cancel,
    job_is_undoable,
    job_progress,
    job_result,
    job_undo,
    jobs_visible,
)
from ..models import Customer, Job, JobKind, JobStatus, TagSource
from ..selectors import FILTER_KEYS
from ..services import TagOperation, customers_tags_bulk_update

MAX_OPERATIONS = 10_000
JOB_LEVEL_EVENTS = ("failed", "crashed")


class JobSerializer(serializers.ModelSerializer):
    """A job as API.md fixes it (`id`, `kind`, `status`, `total`, `done`, `failed_items`, `errors`,
    `created_at`, `finished_at`), plus progress figures for live bars.

    `failed_items` lists the items that failed, each `{"customer": id, "errors": [...]}` (the first
    1000); `failed_count` counts them all; `errors` are job-level errors (why a job failed)."""

    failed_items = serializers.SerializerMethodField()
    failed_count = serializers.IntegerField(source="failed_items", read_only=True)
    errors = serializers.SerializerMethodField()
    actor = serializers.SerializerMethodField()
    employee = serializers.SerializerMethodField()
    progress = serializers.SerializerMethodField()
    undoable = serializers.SerializerMethodField()
    undone_by = serializers.SerializerMethodField()
    result = serializers.SerializerMethodField()
    kind_display = serializers.CharField(source="get_kind_display", read_only=True)
    status_display = serializers.CharField(source="get_status_display", read_only=True)

    class Meta:
        model = Job
        fields = [
            "id", "kind", "kind_display", "status", "status_display", "total", "done", "failed_items",
            "failed_count", "errors", "counts", "params", "actor", "employee", "cancel_requested", "undo_of",
            "undone_by", "undoable", "progress", "result", "created_at", "started_at", "heartbeat_at", "finished_at",
        ]
        read_only_fields = fields

    def get_failed_items(self, job: Job) -> list[dict]:
        return job.errors or []

    def get_errors(self, job: Job) -> list[dict]:
        return [{"event": e.get("event"), "message": e.get("message", ""), "at": e.get("at")}
                for e in (job.log or []) if e.get("event") in JOB_LEVEL_EVENTS]

    def get_actor(self, job: Job) -> str:
        return job_actor_label(job)

    def get_employee(self, job: Job) -> str | None:
        return job.actor_employee.userid if job.actor_employee_id else None

    def get_progress(self, job: Job) -> dict:
        return job_progress(job)

    def get_undoable(self, job: Job) -> bool:
        # `undone_by` is prefetched by the viewset: no query per job
        return job_is_undoable(job) and not any(
            u.status not in (JobStatus.FAILED, JobStatus.CANCELLED) for u in job.undone_by.all()
        )

    def get_result(self, job: Job) -> dict | None:
        return job_result(job)

    def get_undone_by(self, job: Job) -> list[int]:
        return [u.pk for u in job.undone_by.all()]


def _int_ids(value, key: str, errors: list) -> tuple[int, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        errors.append({"code": "invalid", "message": f"'{key}' must be a list of tag ids.", key: value})
        return ()
    if all(type(v) is int and 0 < v <= MAX_ID for v in value):  # the common case, without a call per id
        return tuple(value)
    bad = [v for v in value if not isinstance(v, int) or not is_id(v)]  # range-checked (tagportal.ids)
    if bad:
        errors.append({"code": "invalid", "message": f"'{key}' must be a list of tag ids.", key: bad})
        return ()
    return tuple(value)


def _parse_operations(raw) -> tuple[list[TagOperation], list[int], dict[int, list[dict]]]:
    """Shape-check the items and resolve `external_userid`s (one query). Returns the operations that
    are well formed, their indexes in the request, and the errors of the others by index."""
    if not isinstance(raw, list):
        raise ValidationFailed("'operations' must be a list.", details={"operations": "expected a list"})
    if len(raw) > MAX_OPERATIONS:
        raise TooLarge(
            f"At most {MAX_OPERATIONS} operations per call ({len(raw)} given); use a filter job for more.",
            details={"max": MAX_OPERATIONS, "given": len(raw)},
        )
    errors: dict[int, list[dict]] = {}
    external = {item["external_userid"] for item in raw
                if isinstance(item, dict) and isinstance(item.get("external_userid"), str)}
    by_external = dict(Customer.objects.filter(external_userid__in=external).values_list("external_userid", "pk"))
    operations, indexes = [], []
    for index, item in enumerate(raw):
        item_errors: list[dict] = []
        if not isinstance(item, dict):
            errors[index] = [{"code": "invalid", "message": "An operation must be an object."}]
            continue
        customer = item.get("customer")
        if customer is not None:
            if not isinstance(customer, int) or not is_id(customer):
                item_errors.append({"code": "invalid", "message": "'customer' must be an id (1 … 2**63 - 1)."})
        elif isinstance(item.get("external_userid"), str):
            customer = by_external.get(item["external_userid"])
            if customer is None:
                item_errors.append({"code": "not_found", "message": _("客户不存在或不可见"),
                                    "external_userid": item["external_userid"]})
        else:
            item_errors.append({"code": "invalid", "message": "Each operation needs 'customer' or 'external_userid'."})
        add = _int_ids(item.get("add"), "add", item_errors)
        remove = _int_ids(item.get("remove"), "remove", item_errors)
        if not item_errors and not add and not remove:
            item_errors.append({"code": "invalid", "message": "Nothing to add or remove."})
        if item_errors:
            errors[index] = item_errors
            continue
        operations.append(TagOperation(customer_id=customer, add=add, remove=remove))
        indexes.append(index)
    return operations, indexes, errors


class _Rejected(Exception):
    """Rolls back a validation run whose call is rejected anyway."""


def _item_ref(raw: list, index: int) -> dict:
    item = raw[index] if isinstance(raw[index], dict) else {}
    ref = {"index": index}
    for key in ("customer", "external_userid"):
        if key in item:
            ref[key] = item[key]
    return ref


BULK_EXAMPLES = [
    OpenApiExample("explicit operations", request_only=True, value={
        "operations": [{"customer": 17, "add": [3, 4], "remove": [9]}, {"external_userid": "wmABC", "add": [3]}]}),
    OpenApiExample("a filter (runs as a job)", request_only=True,
                   value={"filter": {"tags_any": "5", "department": 12}, "add": [3], "remove": []}),
]


class BulkTaggingView(ActorMixin, APIView):
    """`POST tagging/bulk/`: explicit operations (≤ 10,000, all-or-nothing, answered at once) or a
    filter (any size, answered `202 {"job": id}`; the job runs in Celery)."""

    max_body_size = settings.BULK_REQUEST_MAX_SIZE  # 10,000 operations (tagportal.middleware)

    @extend_schema(
        request=inline_serializer("BulkTaggingRequest", fields={
            "operations": serializers.ListField(child=serializers.DictField(), required=False),
            "filter": serializers.DictField(required=False, help_text="customers/ filters"),
            "add": serializers.ListField(child=serializers.IntegerField(), required=False),
            "remove": serializers.ListField(child=serializers.IntegerField(), required=False),
            "employee": serializers.CharField(required=False),
        }),
        responses={
            200: inline_serializer("BulkTaggingResult", fields={
                "added": serializers.IntegerField(), "removed": serializers.IntegerField(),
                "unchanged": serializers.IntegerField()}),
            202: inline_serializer("BulkTaggingJob", fields={"job": serializers.IntegerField()}),
        },
        examples=BULK_EXAMPLES,
    )
    def post(self, request):
        data = request.data
        if not isinstance(data, dict):
            raise ValidationFailed("The body must be a JSON object.")
        has_ops, has_filter = "operations" in data, "filter" in data
        if has_ops == has_filter:
            raise ValidationFailed("Give either 'operations' or 'filter' (with 'add'/'remove').",
                                   details={"operations": "xor filter"})
        actor = self.actor
        if has_filter:
            return self._filter_job(request, data)
        raw = data["operations"]
        operations, indexes, errors = _parse_operations(raw)
        try:
            with transaction.atomic():
                try:
                    result = customers_tags_bulk_update(actor=actor, operations=operations, source=TagSource.API)
                except ValidationFailed as exc:
                    if exc.code != "invalid_items":
                        raise
                    for item in exc.details:
                        errors.setdefault(indexes[item["index"]], []).extend(item["errors"])
                if errors:
                    raise _Rejected
        except _Rejected:
            details = [{**_item_ref(raw, i), "errors": errs} for i, errs in sorted(errors.items())]
            raise ValidationFailed(
                f"{len(details)} invalid operation(s); nothing was changed.", details=details, code="invalid_items"
            ) from None
        return Response(result.as_dict())

    def _filter_job(self, request, data):
        flt = data["filter"]
        if not isinstance(flt, dict):
            raise ValidationFailed("'filter' must be an object of customers/ filters.", details={"filter": flt})
        unknown = sorted(set(flt) - set(FILTER_KEYS))
        if unknown:
            raise ValidationFailed(f"Unknown filter(s): {', '.join(unknown)}.", details={"filter": unknown})
        errors: list[dict] = []
        add = _int_ids(data.get("add"), "add", errors)
        remove = _int_ids(data.get("remove"), "remove", errors)
        if errors:
            raise ValidationFailed(errors[0]["message"], details=errors)
        job = bulk_tagging_start(actor=self.actor, add=add, remove=remove, source=TagSource.BULK, filter_params=flt)
        url = request.build_absolute_uri(reverse("job-detail", args=[job.pk]))
        return Response({"job": job.pk, "url": url}, status=status.HTTP_202_ACCEPTED)


class JobPagination(CursorPagination):
    ordering = "-id"


class JobViewSet(ActorMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """`jobs/`: the caller's jobs (enterprise admins: all). Others' jobs are 404."""

    serializer_class = JobSerializer
    pagination_class = JobPagination
    queryset = Job.objects.none()

    def get_queryset(self):
        undos = Job.objects.only("id", "status", "undo_of").order_by("id")
        qs = jobs_visible(self.actor).prefetch_related(Prefetch("undone_by", queryset=undos))
        params = self.request.query_params
        if params.get("kind"):
            qs = qs.filter(kind=params["kind"])
        if params.get("status"):
            qs = qs.filter(status=params["status"])
        return qs

    @extend_schema(parameters=[
        OpenApiParameter("kind", enum=JobKind.values), OpenApiParameter("status", enum=JobStatus.values)])
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(request=None,
                   responses={202: inline_serializer("UndoJob", fields={"job": serializers.IntegerField()})})
    @action(detail=True, methods=["post"])
    def undo(self, request, pk=None):
        """撤销: reverse exactly this job's tag changes (tags others added since stay); runs as a job."""
        undo = job_undo(actor=self.actor, job=self.get_object(), source=TagSource.API)
        url = request.build_absolute_uri(reverse("job-detail", args=[undo.pk]))
        return Response({"job": undo.pk, "url": url}, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=None, responses={200: JobSerializer})
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        """取消: a pending job ends at once, a running one after its current chunk."""
        job = job_cancel(actor=self.actor, job=self.get_object())
        job.refresh_from_db()
        return Response(self.get_serializer(job).data)
