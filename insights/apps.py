from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class InsightsConfig(AppConfig):
    name = "insights"
    verbose_name = _("数据看板")

    def ready(self) -> None:
        # Handlers this app registers in the hooks of the apps below it go here.
        pass
