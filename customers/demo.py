"""Demo data of the customers app, called by `manage.py seed_demo`."""


def seed(*, stdout=None, **options) -> None:
    """Filled in by the customers work."""
