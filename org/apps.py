from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class OrgConfig(AppConfig):
    name = "org"
    verbose_name = _("组织架构")

    def ready(self):
        from django.db.models.signals import post_migrate

        post_migrate.connect(_sync_roles, sender=self)


def _sync_roles(sender, apps=None, **kwargs):
    # Runs after create_permissions (auth's post_migrate handler is connected first).
    from .roles import sync_role_permissions

    if apps is None:
        from django.apps import apps
    sync_role_permissions(apps)
