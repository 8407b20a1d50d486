from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RulesConfig(AppConfig):
    name = "rules"
    verbose_name = _("智能标签")

    def ready(self) -> None:
        # Handlers this app registers in the hooks of the apps below it go here.
        pass
