"""Public pages of the channels app (no login): the landing page a standalone code's QR opens."""

from django.urls import path

from . import views

app_name = "channels"

urlpatterns = [
    path("<str:state>/", views.landing_view, name="landing"),
]
