"""企业微信 the WeCom connection: callback crypto and endpoint, events, API client,
outbound sync, full pull, simulator.
"""
from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class WecomConfig(AppConfig):
    name = "wecom"
    verbose_name = _("企业微信")

    def ready(self) -> None:
        from org.actors import register_actor_label

        # Event handlers register themselves (wecom/handlers/<concern>.py, one module per concern).
        from .handlers import autodiscover

        autodiscover()
        # The outbound sync's hook handlers, tasks and job handler (wecom/sync_ready.py).
        from .sync_ready import connect

        connect()
        register_actor_label(r"企业微信", lambda m: _("企业微信"))
        register_actor_label(r"wecom_sync", lambda m: _("企业微信同步"))
        # The mobile sidebar's JS-SDK and OAuth, WeCom's unassigned list (wecom/sidebar.py).
        from .sidebar import connect as connect_sidebar

        connect_sidebar()
