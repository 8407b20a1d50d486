from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class OrgConfig(AppConfig):
    name = "org"
    verbose_name = _("组织架构")

    def ready(self):
        from django.db.models.signals import post_migrate

        from .actors import register_builtin_labels

        register_builtin_labels()

        post_migrate.connect(_sync_roles, dispatch_uid="org.sync_role_permissions")


# post_migrate is sent once per app, in INSTALLED_APPS order, and auth creates each app's
# permissions in its own handler for that app: the roles are complete only after the last app
# (also after a test flush, which wipes them).
def _sync_roles(sender, apps=None, **kwargs):
    from django.apps import apps as global_apps

    if sender.label != list(global_apps.get_app_configs())[-1].label:
        return
    from .roles import sync_role_permissions

    sync_role_permissions(apps or global_apps)
