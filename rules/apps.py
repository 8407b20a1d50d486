"""智能标签 keyword rules: message ingestion, the Aho-Corasick matcher, hits, test mode, back-tests, undo."""
from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RulesConfig(AppConfig):
    name = "rules"
    verbose_name = _("智能标签")

    def ready(self) -> None:
        from customers.hooks import register_messages_added_handler
        from org.actors import register_actor_label
        from tagportal.demo import register_demo_part

        from . import demo, insights, jobs, tasks  # noqa: F401 - job handlers and the worker signal register on import
        from .matching import messages_queue

        register_messages_added_handler(messages_queue)
        register_demo_part(demo.seed, order=60)
        register_actor_label(r"智能标签#\d+ (?P<name>.*)", lambda m: _("智能标签「%(name)s」") % m.groupdict())
        insights.register_panels()
