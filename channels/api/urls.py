"""API routes of the channels app, included under /api/v1/."""

urlpatterns: list = []
