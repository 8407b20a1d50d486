"""gunicorn's settings for tagportal (read from the working directory), from the environment.

`gunicorn tagportal.wsgi` (Procfile `web`). tagportal.wsgi refuses to start with DEBUG off unless
SECRET_KEY and ALLOWED_HOSTS are set.
"""

import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND", f"0.0.0.0:{os.environ.get('PORT', '8000')}")
workers = int(os.environ.get("WEB_CONCURRENCY", min(2 * multiprocessing.cpu_count() + 1, 8)))
threads = int(os.environ.get("GUNICORN_THREADS", "2"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))  # a 10,000-operation bulk call takes seconds, not minutes
graceful_timeout = 30
keepalive = 5
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "2000"))  # recycle workers now and then
max_requests_jitter = 200
accesslog = "-"
errorlog = "-"
# The TLS proxy in front sets X-Forwarded-*; trust it from these addresses only.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")
preload_app = True  # a configuration error stops the start instead of looping worker boots
