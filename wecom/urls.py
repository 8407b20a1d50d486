"""Routes of the WeCom connection outside the API: the callback WeCom calls (/wecom/...)."""

from django.urls import path

from . import sidebar, views

app_name = "wecom"

urlpatterns: list = [
    path("callback/", views.callback, name="callback"),
    path("oauth/", sidebar.oauth_view, name="oauth"),  # WeCom OAuth back to the sidebar (wecom/sidebar.py)
]
