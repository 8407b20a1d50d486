from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class WecomConfig(AppConfig):
    name = "wecom"
    verbose_name = _("企业微信")

    def ready(self) -> None:
        # Handlers this app registers in the hooks of the apps below it go here.
        pass
