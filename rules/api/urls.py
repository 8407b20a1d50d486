"""API routes of the rules app, included under /api/v1/."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from .views import KeywordRuleViewSet, MessageIngestView

router = SimpleRouter(trailing_slash=True)
router.register("keyword-rules", KeywordRuleViewSet, basename="keyword-rule")

urlpatterns = [
    path("messages/", MessageIngestView.as_view(), name="messages-ingest"),
    *router.urls,
]
