from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CustomersConfig(AppConfig):
    name = "customers"
    verbose_name = _("客户")

    def ready(self) -> None:
        from org.actors import register_actor_label
        from tagportal.demo import register_demo_part

        from . import demo, taxonomy_hooks

        taxonomy_hooks.register()
        register_actor_label(r"transfer #(?P<id>\d+)", lambda m: _("客户继承 #%(id)s") % m.groupdict())
        register_demo_part(demo.seed, order=20)
