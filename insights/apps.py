"""数据看板 insights: the dashboard panels, fed by selectors that respect visibility.

Floor: above customers, below channels and rules, which register their panels here.
"""
from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class InsightsConfig(AppConfig):
    name = "insights"
    verbose_name = _("数据看板")

    def ready(self) -> None:
        from tagportal.demo import register_demo_part

        from .demo import seed_insights_demo
        from .panels import register_builtin_panels

        register_builtin_panels()
        register_demo_part(seed_insights_demo, order=900)
