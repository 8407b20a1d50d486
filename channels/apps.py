"""渠道活码 channel codes: the codes, the trigger on new follow relations, rotation and limits, stats, QR images."""
from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ChannelsConfig(AppConfig):
    name = "channels"
    verbose_name = _("渠道活码")

    def ready(self) -> None:
        from customers.hooks import register_relation_added_handler
        from org.actors import register_actor_label
        from tagportal.demo import register_demo_part

        from . import demo, insights, services

        # The trigger, in one place: every new or returning follow relation, inside customer_upsert's transaction.
        register_relation_added_handler(services.handle_relation_added)
        register_demo_part(demo.seed, order=40)
        register_actor_label(r"渠道活码「(?P<name>.*)」#\d+", lambda m: _("渠道活码「%(name)s」") % m.groupdict())
        register_actor_label(r"渠道活码落地页「(?P<name>.*)」",
                             lambda m: _("渠道活码落地页「%(name)s」") % m.groupdict())
        insights.register_panels()  # 数据看板: adds per code per day, retention (insights' registry)
