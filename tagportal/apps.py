from django.contrib.admin.apps import AdminConfig


class PortalAdminConfig(AdminConfig):
    """django.contrib.admin with `PortalAdminSite` as `admin.site`."""

    default_site = "tagportal.admin.PortalAdminSite"

    def ready(self):
        super().ready()
        from tagportal import converters

        converters.register()  # `<id:pk>` in every app's URL conf (range-checked ids)
        _name_link_models()


def _name_link_models() -> None:
    """The tables Django creates for many-to-many fields (成员 ↔ 所属部门) are named by Django in
    the language active at start-up ("Employee-department关系") and shown as "Employee_departments
    object (1)", e.g. on a delete confirmation. Name them in the page's language after the field
    ("成员的所属部门") and show the row as the object it links to ("HQ")."""
    from django.apps import apps
    from django.utils.text import format_lazy
    from django.utils.translation import gettext_lazy

    for model in apps.get_models(include_auto_created=True):
        owner = model._meta.auto_created
        if not owner:
            continue
        field = next((f for f in owner._meta.many_to_many if f.remote_field.through is model), None)
        if field is None:
            continue
        name = format_lazy(gettext_lazy("{owner}的{field}"), owner=owner._meta.verbose_name, field=field.verbose_name)
        model._meta.verbose_name = model._meta.verbose_name_plural = name
        target = field.m2m_reverse_field_name()
        model.__str__ = lambda row, target=target: str(getattr(row, target))
