"""Admin of the customers app. Jobs and transfers have their own admin modules, imported below."""

from . import admin_jobs, admin_transfers  # noqa: E402,F401
