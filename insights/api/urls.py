"""API routes of the insights app, included under /api/v1/."""

from django.urls import path

from .views import PanelListView, PanelView

urlpatterns = [
    path("insights/", PanelListView.as_view(), name="insights-panels"),
    path("insights/<str:panel>/", PanelView.as_view(), name="insights-panel"),
]
