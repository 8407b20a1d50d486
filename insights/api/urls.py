"""API routes of the insights app, included under /api/v1/."""

urlpatterns: list = []
