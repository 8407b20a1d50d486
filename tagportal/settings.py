"""Settings, read from the environment (django-environ).

With nothing set, the portal runs embedded: SQLite next to manage.py and Celery in eager
mode, so `make demo` works on a bare machine. Production and CI set DATABASE_URL
(PostgreSQL, psycopg 3) and CELERY_BROKER_URL (Redis) and run a real worker.
"""

import sys
from datetime import timedelta
from pathlib import Path

import environ

from tagportal.production import local_secret_key

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

# ---------------------------------------------------------------- safe defaults (prod; tagportal/production.py)
# DEBUG only when asked for (`make demo` does). Without SECRET_KEY in the environment, a random key
# generated once into .secret_key (git-ignored); tagportal.wsgi refuses to serve with DEBUG off
# unless SECRET_KEY and ALLOWED_HOSTS come from the environment.
DEBUG = env.bool("DEBUG", default=False)
# The test suite runs with DEBUG off, as production does, but over plain HTTP and without collectstatic.
TESTING = env.bool("TAGPORTAL_TESTING", default="pytest" in sys.modules)
SECRET_KEY = env("SECRET_KEY", default="") or local_secret_key(BASE_DIR / ".secret_key")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["*"] if DEBUG else ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# HTTPS (on outside DEBUG and tests): TLS ends at the load balancer / reverse proxy, which must set
# X-Forwarded-Proto. `manage.py check --deploy` is clean with these defaults (tests/prod/test_deploy.py).
HTTPS = env.bool("HTTPS", default=not DEBUG and not TESTING)
SECURE_SSL_REDIRECT = HTTPS
SECURE_REDIRECT_EXEMPT = [r"^health/"]  # load balancers probe over plain HTTP inside the network
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if HTTPS else None
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31_536_000 if HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True

INSTALLED_APPS = [
    "tagportal.apps.PortalAdminConfig",  # django.contrib.admin with the portal's site
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "mptt",
    "axes",  # login throttling (prod)
    "org",
    "tags",
    "customers",
    "insights",
    "channels",
    "rules",
    "wecom",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",  # static files under gunicorn (prod)
    "tagportal.middleware.RequestSizeLimitMiddleware",  # 413 before a large body is read (prod)
    "django.contrib.sessions.middleware.SessionMiddleware",
    "tagportal.middleware.PortalLocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",  # last: turns a lockout into the login page's message (prod)
]

ROOT_URLCONF = "tagportal.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
            # tagportal is installed as the admin's AppConfig, so its template tags are named here.
            "libraries": {"portal_text": "tagportal.templatetags.portal_text"},
        },
    },
]

WSGI_APPLICATION = "tagportal.wsgi.application"

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Bulk jobs and the dev server write concurrently; wait for the lock instead of failing.
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 20

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "org.Employee"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
if env.bool("TAGPORTAL_FAST_PASSWORD_HASHING", default=False):
    # Tests only (scripts/run_tests.py sets it): every factory employee gets a password, and
    # PBKDF2's deliberate slowness would dominate the suite's run time.
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", "简体中文"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "Asia/Shanghai"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# Production: collectstatic into STATIC_ROOT, hashed and compressed, served by WhiteNoise (prod).
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
                    if env.bool("STATIC_MANIFEST", default=not DEBUG and not TESTING)
                    else "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = DEBUG or TESTING
WHITENOISE_AUTOREFRESH = DEBUG or TESTING

LOGIN_URL = "admin:login"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "tagportal.api.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["tagportal.api.permissions.ApiAccess"],
    "DEFAULT_PAGINATION_CLASS": "tagportal.api.pagination.CursorPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "tagportal.api.exceptions.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "UNAUTHENTICATED_USER": None,
    # Per API client (a session: per employee) and per acting employee: API_THROTTLE_RATE (prod).
    "DEFAULT_THROTTLE_CLASSES": [
        "tagportal.api.throttling.ApiClientRateThrottle",
        "tagportal.api.throttling.ActingEmployeeRateThrottle",
    ],
}

SPECTACULAR_SETTINGS = {
    "TITLE": "tagportal API",
    "DESCRIPTION": "Customer tags for WeCom companies: taxonomy, portraits, bulk tagging, transfers.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI and ReDoc from the installed sidecar package: the docs work offline.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# Celery: eager unless a broker is configured.
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default="")
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=not CELERY_BROKER_URL)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TIMEZONE = TIME_ZONE
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE: dict = {}

# 数据看板 (insights/): its aggregates are rebuilt by Celery beat every INSIGHTS_REFRESH_MINUTES.
INSIGHTS_REFRESH_MINUTES = env.int("INSIGHTS_REFRESH_MINUTES", default=15)
CELERY_BEAT_SCHEDULE["insights.refresh_aggregates"] = {
    "task": "insights.refresh_aggregates",
    "schedule": INSIGHTS_REFRESH_MINUTES * 60.0,
}

# 渠道活码 (channels/): who receives each code's customers is re-checked by Celery beat every
# CHANNELS_REFRESH_MINUTES (a new Asia/Shanghai day restores those who reached the daily limit; working
# hours start and end); a change fires the receivers-changed hook (WeCom's contact way).
CHANNELS_REFRESH_MINUTES = env.int("CHANNELS_REFRESH_MINUTES", default=5)
CELERY_BEAT_SCHEDULE["channels.refresh_receivers"] = {
    "task": "channels.refresh_receivers",
    "schedule": CHANNELS_REFRESH_MINUTES * 60.0,
}

# Demo mode (`make demo` sets it): with no broker, jobs run in a thread of the web process instead of
# inline in the request, so their pages show the progress bar moving. Ignored when a broker is set.
TAGPORTAL_JOBS_IN_THREAD = env.bool("TAGPORTAL_JOBS_IN_THREAD", default=False)

# WeCom (企业微信) connection (wecom/). All empty: the portal runs standalone, as without WeCom.
# WECOM_SECRET is the 客户联系 secret; WECOM_TOKEN and WECOM_AES_KEY are the callback's Token and
# EncodingAESKey; WECOM_API_BASE is pointed at the simulator in tests and demos.
WECOM_CORP_ID = env("WECOM_CORP_ID", default="")
WECOM_SECRET = env("WECOM_SECRET", default="")
WECOM_TOKEN = env("WECOM_TOKEN", default="")
WECOM_AES_KEY = env("WECOM_AES_KEY", default="")
WECOM_API_BASE = env("WECOM_API_BASE", default="https://qyapi.weixin.qq.com/cgi-bin")
WECOM_AGENT_ID = env("WECOM_AGENT_ID", default="")
WECOM_TIMEOUT = env.float("WECOM_TIMEOUT", default=10.0)
# Events whose processing failed are retried with backoff (base × 2^n, at most an hour), at most
# WECOM_EVENT_MAX_ATTEMPTS times; Celery beat looks for due ones every minute.
WECOM_EVENT_RETRY_SECONDS = env.float("WECOM_EVENT_RETRY_SECONDS", default=30.0)
WECOM_EVENT_MAX_ATTEMPTS = env.int("WECOM_EVENT_MAX_ATTEMPTS", default=10)
CELERY_BEAT_SCHEDULE["wecom.retry_events"] = {"task": "wecom.retry_events", "schedule": 60.0}
# Outbound sync (wecom/outbox.py, taxonomy.py, transfers.py): the outbox is pushed every
# WECOM_PUSH_SECONDS (and at once after a taxonomy change); failed pushes retry after
# WECOM_OUTBOX_RETRY_SECONDS × 2^n (at most an hour); a push left "sending" by a dead worker is taken
# over after WECOM_OUTBOX_LEASE_SECONDS; hand-overs are polled every WECOM_TRANSFER_POLL_MINUTES.
WECOM_PUSH_SECONDS = env.float("WECOM_PUSH_SECONDS", default=5.0)
WECOM_OUTBOX_RETRY_SECONDS = env.float("WECOM_OUTBOX_RETRY_SECONDS", default=10.0)
WECOM_OUTBOX_LEASE_SECONDS = env.int("WECOM_OUTBOX_LEASE_SECONDS", default=120)
WECOM_TRANSFER_POLL_MINUTES = env.int("WECOM_TRANSFER_POLL_MINUTES", default=30)
CELERY_BEAT_SCHEDULE["wecom.push_outbox"] = {"task": "wecom.push_outbox", "schedule": WECOM_PUSH_SECONDS}
CELERY_BEAT_SCHEDULE["wecom.poll_transfers"] = {
    "task": "wecom.poll_transfers", "schedule": WECOM_TRANSFER_POLL_MINUTES * 60.0}

# ---------------------------------------------------------------- serving, queues, abuse limits (prod)
# Cache: Redis when CACHE_URL is set (shared by every web machine: API throttles, health probes),
# else this process's memory.
CACHE_URL = env("CACHE_URL", default="")
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL}
    if CACHE_URL.startswith(("redis://", "rediss://", "unix://"))
    else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "tagportal"}
}

# API rate limit (API.md "Limits and health"): per API client and per acting employee.
API_THROTTLE_RATE = env("API_THROTTLE_RATE", default="600/min") or None

# Request bodies: REQUEST_BODY_MAX_SIZE for every request, BULK_REQUEST_MAX_SIZE for the views that
# take up to 10,000 items (`max_body_size = settings.BULK_REQUEST_MAX_SIZE` on the view: tagging/bulk/,
# messages/); larger is a 413 before the body is read (tagportal.middleware.RequestSizeLimitMiddleware).
REQUEST_BODY_MAX_SIZE = env.int("REQUEST_BODY_MAX_SIZE", default=1024 * 1024)
BULK_REQUEST_MAX_SIZE = env.int("BULK_REQUEST_MAX_SIZE", default=32 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = BULK_REQUEST_MAX_SIZE  # Django's own cap; the middleware is stricter per view
DATA_UPLOAD_MAX_NUMBER_FIELDS = env.int("DATA_UPLOAD_MAX_NUMBER_FIELDS", default=2000)
FILE_UPLOAD_MAX_MEMORY_SIZE = env.int("FILE_UPLOAD_MAX_MEMORY_SIZE", default=5 * 1024 * 1024)

# Login throttling (django-axes): after AXES_FAILURE_LIMIT failures for one account from one address,
# that pair is locked for AXES_COOLOFF_MINUTES, or until an enterprise admin unlocks it (系统 → 登录锁定).
AUTHENTICATION_BACKENDS = [
    "tagportal.auth.LoginThrottleBackend",  # axes; first, so a locked pair never reaches the password check
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=30)) or None
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_USERNAME_FORM_FIELD = "username"
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "tagportal.auth.lockout_response"
AXES_ENABLE_ADMIN = False  # the portal's own page (tagportal/auth.py) lets enterprise admins unlock
AXES_CLIENT_IP_CALLABLE = "tagportal.auth.client_ip"
PROXY_COUNT = env.int("PROXY_COUNT", default=1 if HTTPS else 0)  # proxies in front that append to X-Forwarded-For
AXES_VERBOSE = False

# Celery queues: WeCom events and the outbox, keyword matching and bulk jobs each have their own queue,
# so each scales on its own workers and a long bulk job never delays a WeCom event. Tasks are named
# `<app>.<what>` and routed by that prefix; `celery` is the default queue.
CELERY_TASK_DEFAULT_QUEUE = "celery"
TAGPORTAL_CELERY_QUEUES = ("celery", "wecom", "matching", "bulk")
CELERY_TASK_ROUTES = {
    "customers.tasks.jobs_requeue_stale": {"queue": "celery"},  # maintenance, never behind a long job
    "wecom.*": {"queue": "wecom"},
    "rules.*": {"queue": "matching"},
    "customers.*": {"queue": "bulk"},  # job_run: bulk tagging, undo, transfers, WeCom sync, back-tests
}
# Periodic work, sent by exactly one `celery beat` (Procfile). An entry whose task no app registers
# (yet) is skipped with a warning by tagportal.celery.PortalScheduler rather than sent.
CELERY_WORKER_REDIRECT_STDOUTS = False  # keep Django's console logging visible in worker and beat logs
CELERY_BEAT_SCHEDULER = "tagportal.celery:PortalScheduler"
CELERY_BEAT_SCHEDULE_FILENAME = env("CELERY_BEAT_SCHEDULE_FILENAME", default=str(BASE_DIR / "celerybeat-schedule"))
CELERY_BEAT_SCHEDULE.update({  # beside the apps' own entries above (insights, channels)
    "customers.jobs_requeue_stale": {"task": "customers.tasks.jobs_requeue_stale", "schedule": 15.0},
    "wecom.retry_events": {"task": "wecom.retry_events", "schedule": 60.0},
    "wecom.push_outbox": {"task": "wecom.push_outbox", "schedule": 30.0},
    "wecom.poll_transfers": {"task": "wecom.poll_transfers", "schedule": 300.0},
})
# Workers write a heartbeat to the broker every few seconds; /health/ shows the latest.
WORKER_HEARTBEAT_SECONDS = env.int("WORKER_HEARTBEAT_SECONDS", default=10)
WORKER_HEARTBEAT_MAX_AGE = env.int("WORKER_HEARTBEAT_MAX_AGE", default=60)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="WARNING")},
}

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not memory, so a real worker process and the live server share the test database.
    DATABASES["default"]["TEST"] = {"NAME": str(BASE_DIR / "test-db-pytest.sqlite3")}
