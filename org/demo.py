"""Demo data of the org app, called by `manage.py seed_demo`."""


def seed(*, stdout=None, **options) -> None:
    """Filled in by the org work."""
