import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tagportal.settings")
application = get_wsgi_application()

from tagportal.production import require_production_settings  # noqa: E402 - needs the settings loaded

require_production_settings()  # gunicorn & co. refuse to serve without SECRET_KEY and ALLOWED_HOSTS
