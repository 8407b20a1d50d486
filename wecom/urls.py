"""Routes of the WeCom connection outside the API: the callback WeCom calls (/wecom/...)."""

from django.urls import path

from . import views

app_name = "wecom"

urlpatterns: list = [
    path("callback/", views.callback, name="callback"),
]
