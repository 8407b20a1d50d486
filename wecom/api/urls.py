"""API routes of the wecom app, included under /api/v1/."""

urlpatterns: list = []
