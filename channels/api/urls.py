"""API routes of the channels app, included under /api/v1/."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from .views import ChannelCodeViewSet

router = SimpleRouter(trailing_slash=True)
router.register("channel-codes", ChannelCodeViewSet, basename="channel-code")

urlpatterns = [
    path("channel-codes/<int:pk>/qr.png", ChannelCodeViewSet.as_view({"get": "qr_png"}), name="channel-code-qr-png"),
    path("channel-codes/<int:pk>/qr.svg", ChannelCodeViewSet.as_view({"get": "qr_svg"}), name="channel-code-qr-svg"),
    *router.urls,
]
