"""Safe defaults: DEBUG off unless asked for, no fixed secret key, production refuses to serve
without SECRET_KEY and ALLOWED_HOSTS, `check --deploy` clean, error pages that show nothing internal."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.http import Http404
from django.test import Client, override_settings
from django.urls import path

import tagportal.urls
from tagportal.production import local_secret_key

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION_ENV = {"SECRET_KEY": "x7Qp2-" + "kV9zL4mN8rT1wY6bH3jF5dS0aG" * 2, "ALLOWED_HOSTS": "portal.example.com"}


def _django(code: str, **env) -> subprocess.CompletedProcess:
    """Run `code` in a fresh interpreter with the settings as a deployment would have them."""
    clean = {k: v for k, v in os.environ.items()
             if k not in {"DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "HTTPS", "TAGPORTAL_TESTING", "STATIC_MANIFEST",
                          "DJANGO_ALLOW_ASYNC_UNSAFE"}}
    clean.update(DJANGO_SETTINGS_MODULE="tagportal.settings", TAGPORTAL_TESTING="false", **env)
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=clean, capture_output=True, text=True,
                          timeout=120)


def test_debug_is_off_unless_asked_for():
    result = _django("import django; django.setup(); from django.conf import settings; print(settings.DEBUG)")
    assert result.stdout.strip() == "False", result.stderr
    result = _django("import django; django.setup(); from django.conf import settings; print(settings.DEBUG)",
                     DEBUG="true")
    assert result.stdout.strip() == "True", result.stderr


def test_check_deploy_is_clean_in_production_settings():
    result = _django("from django.core.management import execute_from_command_line; "
                     "execute_from_command_line(['manage.py', 'check', '--deploy', '--fail-level', 'WARNING'])",
                     **PRODUCTION_ENV)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout, result.stdout + result.stderr


@pytest.mark.parametrize("missing", ["SECRET_KEY", "ALLOWED_HOSTS"])
def test_serving_in_production_refuses_to_start_without(missing):
    env = {k: v for k, v in PRODUCTION_ENV.items() if k != missing}
    result = _django("import tagportal.wsgi", **env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and missing in result.stderr


def test_serving_in_production_starts_with_both_set():
    result = _django("import tagportal.wsgi; print('serving')", **PRODUCTION_ENV)
    assert result.stdout.strip() == "serving", result.stderr


def test_without_secret_key_a_local_random_key_is_generated_once(tmp_path):
    key_file = tmp_path / ".secret_key"
    first = local_secret_key(key_file)
    assert len(first) >= 50 and "insecure" not in first
    assert local_secret_key(key_file) == first  # stable across processes
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    assert local_secret_key(tmp_path / "other") != first  # random, not a key written in the code


def test_the_secret_key_file_is_git_ignored():
    assert ".secret_key" in (ROOT / ".gitignore").read_text().split()


# ---------------------------------------------------------------- error pages


def _boom(request):
    secret = "settings-and-a-traceback"  # noqa: F841 - must never reach the page
    raise ZeroDivisionError("internal detail 4f1c")


def _missing(request):
    raise Http404("internal lookup detail 9b2e")


urlpatterns = [path("boom/", _boom), path("api/v1/boom/", _boom), path("missing/", _missing),
               *tagportal.urls.urlpatterns]
handler500 = tagportal.urls.handler500


@override_settings(ROOT_URLCONF=__name__, DEBUG=False)
def test_the_500_page_is_friendly_chinese_and_shows_nothing_internal(db):
    response = Client(raise_request_exception=False).get("/boom/")
    assert response.status_code == 500
    body = response.content.decode()
    assert "服务器出错了" in body
    for leak in ("ZeroDivisionError", "4f1c", "Traceback", "SECRET_KEY", "settings", "/work/", "site-packages"):
        assert leak not in body


@override_settings(ROOT_URLCONF=__name__, DEBUG=False)
def test_a_500_under_the_api_is_the_api_error_shape(db):
    response = Client(raise_request_exception=False).get("/api/v1/boom/")
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "server_error"
    assert "4f1c" not in response.content.decode()


@override_settings(ROOT_URLCONF=__name__, DEBUG=False)
def test_the_404_page_is_friendly_chinese_and_shows_nothing_internal(db):
    response = Client().get("/missing/")
    assert response.status_code == 404
    body = response.content.decode()
    assert "页面不存在" in body
    for leak in ("9b2e", "URLconf", "urlpatterns", "Django tried"):
        assert leak not in body
