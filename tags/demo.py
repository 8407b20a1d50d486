"""Demo data of the tags app, called by `manage.py seed_demo`."""


def seed(*, stdout=None, **options) -> None:
    """Filled in by the tags work."""
