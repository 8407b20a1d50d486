#!/usr/bin/env python
"""Run the test suite on PostgreSQL when one answers on 127.0.0.1:5432, else on SQLite.

Environment it honours: DATABASE_URL (used as is), TAGPORTAL_TEST_DB=sqlite (force SQLite),
TAGPORTAL_REDIS_URL (the Redis the job tests' real worker uses; default redis://127.0.0.1:6379/15),
TAGPORTAL_FAST_PASSWORD_HASHING (default true here: MD5 password hashes, tests only).
Extra arguments go to pytest.
"""

import os
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def main() -> int:
    env = dict(os.environ)
    if env.get("TAGPORTAL_TEST_DB") == "sqlite":
        env["DATABASE_URL"] = "sqlite:///" + str(ROOT / "test-db.sqlite3")
    elif "DATABASE_URL" not in env and reachable("127.0.0.1", 5432):
        env["DATABASE_URL"] = "postgres://postgres@127.0.0.1:5432/tagportal"
    env.setdefault("TAGPORTAL_REDIS_URL", "redis://127.0.0.1:6379/15")
    env.setdefault("TAGPORTAL_FAST_PASSWORD_HASHING", "true")
    env.setdefault("TAGPORTAL_TESTING", "true")  # DEBUG off as in production, but plain HTTP, no collectstatic
    # Tests run Celery eagerly unless a test starts a real worker (tests/conftest.py).
    env.pop("CELERY_BROKER_URL", None)
    print(f"tests on {env.get('DATABASE_URL', 'sqlite (default)').split('@')[-1]}", flush=True)
    cmd = [sys.executable, "-m", "pytest", *sys.argv[1:]]
    return subprocess.call(cmd, cwd=ROOT, env=env)


if __name__ == "__main__":
    sys.exit(main())
