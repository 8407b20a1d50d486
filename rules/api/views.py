"""`messages/` (ingestion) and `keyword-rules/` (API.md "Messages and keyword rules"). Thin: read the
body, call a service or a selector, serialise."""

from __future__ import annotations

from django.conf import settings
from django.shortcuts import get_object_or_404
from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from customers.models import Job
from customers.services import messages_ingest
from tagportal.api.pagination import CursorPagination
from tagportal.api.viewsets import ActorMixin, RestrictedModelViewSet
from tagportal.errors import NotFound, ValidationFailed
from tagportal.ids import is_id

from .. import services
from ..matcher import RuleSpec
from ..models import HitOutcome, KeywordRule
from ..selectors import keyword_test, rule_figures, rule_hits
from .serializers import KeywordRuleSerializer, RuleHitSerializer


class MessageIngestView(ActorMixin, APIView):
    """`POST messages/`: up to 10,000 chat messages per call (413 above), ours or WeCom's archive shape;
    all-or-nothing; idempotent by `msgid`. Matching runs on the worker after the call."""

    max_body_size = settings.BULK_REQUEST_MAX_SIZE  # 10,000 messages, beyond the ordinary body limit (prod)

    @extend_schema(
        request=inline_serializer("MessageIngestRequest", fields={
            "messages": serializers.ListField(child=serializers.DictField())}),
        responses=inline_serializer("MessageIngestResult", fields={
            "created": serializers.IntegerField(), "duplicates": serializers.IntegerField(),
            "skipped": serializers.IntegerField()}),
    )
    def post(self, request):
        data = request.data
        if not isinstance(data, dict) or "messages" not in data:
            raise ValidationFailed("请求体必须是 {\"messages\": [...]}。", details={"messages": "required"})
        result = messages_ingest(actor=self.actor, messages=data["messages"])
        return Response(result.as_dict())


def _job_answer(request, job: Job) -> Response:
    url = request.build_absolute_uri(reverse("job-detail", args=[job.pk]))
    return Response({"job": job.pk, "url": url}, status=status.HTTP_202_ACCEPTED)


class HitPagination(CursorPagination):
    ordering = "-id"


class KeywordRuleViewSet(RestrictedModelViewSet):
    """智能标签. Tag admins, enterprise admins and enterprise-level API clients; others see none."""

    queryset = KeywordRule.objects.prefetch_related("tags", "exclude_tags", "sample_customers", "employees",
                                                    "departments")
    serializer_class = KeywordRuleSerializer

    def create(self, request, *args, **kwargs):
        rule = services.keyword_rule_create(actor=self.actor, data=_body(request))
        return Response(self._read(rule), status=status.HTTP_201_CREATED)

    def update(self, request, *args, **kwargs):
        rule = services.keyword_rule_update(actor=self.actor, rule=self.get_object(), data=_body(request))
        return Response(self._read(rule))

    def destroy(self, request, *args, **kwargs):
        services.keyword_rule_delete(actor=self.actor, rule=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    def retrieve(self, request, *args, **kwargs):
        rule = self.get_object()
        return Response({**self._read(rule), "figures": rule_figures(rule)})

    def _read(self, rule: KeywordRule) -> dict:
        return KeywordRuleSerializer(self.get_queryset().get(pk=rule.pk)).data

    @extend_schema(responses=RuleHitSerializer(many=True),
                   parameters=[OpenApiParameter("outcome", str, enum=HitOutcome.values)])
    @action(detail=True, methods=["get"])
    def hits(self, request, pk=None):
        rule = self.get_object()
        outcome = request.query_params.get("outcome") or None
        if outcome is not None and outcome not in HitOutcome.values:
            raise ValidationFailed(f"outcome: {', '.join(HitOutcome.values)}", details={"outcome": outcome})
        paginator = HitPagination()
        page = paginator.paginate_queryset(rule_hits(rule, outcome=outcome).select_related("message"), request,
                                           view=self)
        return paginator.get_paginated_response(RuleHitSerializer(page, many=True).data)

    @extend_schema(request=inline_serializer("RuleBacktestRequest", fields={
        "since": serializers.DateField(required=False), "until": serializers.DateField(required=False)}))
    @action(detail=True, methods=["post"])
    def backtest(self, request, pk=None):
        body = _body(request)
        job = services.rule_backtest_start(actor=self.actor, rule=self.get_object(), since=body.get("since"),
                                           until=body.get("until"))
        return _job_answer(request, job)

    @extend_schema(request=inline_serializer("RuleBacktestApplyRequest", fields={"job": serializers.IntegerField()}))
    @action(detail=True, methods=["post"], url_path="backtest/apply")
    def backtest_apply(self, request, pk=None):
        self.get_object()
        job_id = _body(request).get("job")
        if isinstance(job_id, bool) or not isinstance(job_id, int) or not 0 < job_id < 2**63:
            raise ValidationFailed("job: 回测任务 id", details={"job": job_id})
        backtest_job = get_object_or_404(Job.objects.filter(backtest__rule_id=self.kwargs["pk"]), pk=job_id)
        return _job_answer(request, services.rule_backtest_apply(actor=self.actor, job=backtest_job))

    @extend_schema(request=inline_serializer("RuleUndoRequest", fields={
        "since": serializers.DateField(required=False, allow_null=True)}))
    @action(detail=True, methods=["post"])
    def undo(self, request, pk=None):
        job = services.rule_undo_start(actor=self.actor, rule=self.get_object(), since=_body(request).get("since"))
        return _job_answer(request, job)

    @extend_schema(request=inline_serializer("KeywordTestRequest", fields={
        "content": serializers.CharField(),
        "keywords": serializers.ListField(child=serializers.CharField(), required=False),
        "exclude_keywords": serializers.ListField(child=serializers.CharField(), required=False),
        "rule": serializers.IntegerField(required=False, help_text="the rule these keywords are an edit of")}))
    @action(detail=False, methods=["post"])
    def test(self, request):
        body = _body(request)
        services.check_rule_reader(self.actor)
        content = body.get("content")
        if not isinstance(content, str) or len(content) > 20_000 or "\x00" in content:
            raise ValidationFailed("content: 需要一段文字（最长 20,000 字）。", details={"content": "required"})
        draft, editing = None, body.get("rule")
        if editing is not None:
            if isinstance(editing, bool) or not isinstance(editing, int) or not is_id(editing):
                raise ValidationFailed("rule: 规则 id", details={"rule": editing})
            if not self.get_queryset().filter(pk=editing).exists():
                raise NotFound("规则不存在或不可见。", details={"rule": editing})
        if body.get("keywords") is not None:
            errors: dict = {}
            keywords = services.clean_keywords(body.get("keywords"), "keywords", errors, required=False)
            excludes = services.clean_keywords(body.get("exclude_keywords"), "exclude_keywords", errors,
                                               required=False)
            if errors:
                first = next(iter(errors))
                raise ValidationFailed(f"{first}: {errors[first]}", details=errors)
            draft = RuleSpec(id=0, name=str(body.get("name") or "（编辑中）")[:100], label="", status="draft",
                             keywords=keywords, exclude_keywords=excludes, directions=frozenset({"in"}), min_hits=1,
                             window_days=None, tags=(), exclude_tags=frozenset(), covered_employees=None)
        return Response({"content": content, "matches": keyword_test(content=content, draft=draft, editing=editing)})


def _body(request) -> dict:
    if not isinstance(request.data, dict):
        raise ValidationFailed("请求体必须是 JSON 对象。", details={"body": "expected an object"})
    return request.data
