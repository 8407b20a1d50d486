"""Settings, read from the environment (django-environ).

With nothing set, the portal runs embedded: SQLite next to manage.py and Celery in eager
mode, so `make demo` works on a bare machine. Production and CI set DATABASE_URL
(PostgreSQL, psycopg 3) and CELERY_BROKER_URL (Redis) and run a real worker.
"""

from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=True)
SECRET_KEY = env("SECRET_KEY", default="tagportal-insecure-development-key-change-me")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["*"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

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
    "django.contrib.sessions.middleware.SessionMiddleware",
    "tagportal.middleware.PortalLocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
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

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="WARNING")},
}

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not memory, so a real worker process and the live server share the test database.
    DATABASES["default"]["TEST"] = {"NAME": str(BASE_DIR / "test-db-pytest.sqlite3")}
