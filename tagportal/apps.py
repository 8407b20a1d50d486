from django.contrib.admin.apps import AdminConfig


class PortalAdminConfig(AdminConfig):
    """django.contrib.admin with `PortalAdminSite` as `admin.site`."""

    default_site = "tagportal.admin.PortalAdminSite"

    def ready(self):
        super().ready()
        from tagportal import converters

        converters.register()  # `<id:pk>` in every app's URL conf (range-checked ids)
