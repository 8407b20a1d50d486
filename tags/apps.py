from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class TagsConfig(AppConfig):
    name = "tags"
    verbose_name = _("标签")

    def ready(self) -> None:
        from tagportal.demo import register_demo_part

        from . import demo

        register_demo_part(demo.seed, order=10)
