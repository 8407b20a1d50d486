from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ChannelsConfig(AppConfig):
    name = "channels"
    verbose_name = _("渠道活码")

    def ready(self) -> None:
        # Handlers this app registers in the hooks of the apps below it go here.
        pass
