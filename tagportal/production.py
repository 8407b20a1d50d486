"""Safe defaults for serving: the development secret key file, and the refusal to serve in
production without `SECRET_KEY` and `ALLOWED_HOSTS` from the environment.

`DEBUG` is off unless asked for. Without `SECRET_KEY` in the environment, management commands,
tests and `make demo` use a random key generated once into `.secret_key` next to manage.py
(git-ignored, mode 600), never a key written in the code. A WSGI server (gunicorn loads
`tagportal.wsgi`) refuses to start with `DEBUG` off unless both are set.
"""

from __future__ import annotations

import os
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured


def local_secret_key(path: Path) -> str:
    """The key in `path`, generated there (atomically, once) when missing."""
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    from django.core.management.utils import get_random_secret_key

    key = get_random_secret_key()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process won the race: use its key
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(key + "\n")
    return key


def require_production_settings(environ=os.environ) -> None:
    """Called by `tagportal.wsgi`: serving with DEBUG off needs SECRET_KEY and ALLOWED_HOSTS set."""
    from django.conf import settings

    if settings.DEBUG:
        return
    missing = [name for name in ("SECRET_KEY", "ALLOWED_HOSTS") if not environ.get(name, "").strip()]
    if missing:
        raise ImproperlyConfigured(
            f"Refusing to serve with DEBUG off: set {' and '.join(missing)} in the environment "
            "(e.g. SECRET_KEY=$(python -c 'import secrets; print(secrets.token_urlsafe(50))') "
            "ALLOWED_HOSTS=portal.example.com), or DEBUG=true for local development."
        )
