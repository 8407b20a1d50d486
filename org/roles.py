"""Role groups and their model permissions, the one definition the data migration and the
post-migrate sync share (so a model added later gets its permissions without a new migration)."""

ROLE_PERMISSIONS = {
    "enterprise_admin": "__all__",
    "tag_admin": {
        "tags": ["taggroup", "tag"],
        "customers": ["customer", "followrelation", "tagging", "note", "message", "tagevent", "job"],
        "org": [("department", "view"), ("employee", "view")],
    },
    "hr": {
        # HR manages employees; the department tree is the enterprise admin's (or WeCom sync's).
        "org": [("department", "view"), "employee"],
        "customers": [("customer", "view"), ("followrelation", "view"), ("transfer",), ("transferitem", "view"),
                      ("job", "view")],
        "tags": [("taggroup", "view"), ("tag", "view")],
    },
    "manager": {
        "org": [("department", "view"), ("employee", "view")],
        "tags": [("taggroup", "view"), ("tag", "view"), ("personaltag",)],
        "customers": [("customer", "view", "change"), ("note", "view", "add"), ("message", "view"),
                      ("tagevent", "view"), ("job", "view", "add"), ("followrelation", "view")],
    },
    "staff": {
        "org": [("department", "view")],
        "tags": [("taggroup", "view"), ("tag", "view"), ("personaltag",)],
        "customers": [("customer", "view", "change"), ("note", "view", "add"), ("message", "view"),
                      ("tagevent", "view"), ("followrelation", "view")],
    },
}
ALL_ACTIONS = ("view", "add", "change", "delete")


def sync_role_permissions(apps) -> None:
    """Create the role groups and set their permissions; idempotent."""
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, spec in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=role)
        if spec == "__all__":
            perms = Permission.objects.filter(content_type__app_label__in=["org", "tags", "customers"])
        else:
            codenames = []
            for app_label, models in spec.items():
                for entry in models:
                    model, *actions = (entry,) if isinstance(entry, str) else entry
                    for action in actions or ALL_ACTIONS:
                        codenames.append((app_label, f"{action}_{model}"))
            perms = [
                p
                for p in Permission.objects.filter(
                    content_type__app_label__in=list(spec), codename__in=[c for _, c in codenames]
                ).select_related("content_type")
                if (p.content_type.app_label, p.codename) in codenames
            ]
        group.permissions.set(perms)
