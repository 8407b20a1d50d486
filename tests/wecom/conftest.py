"""The WeCom stand-in for tests: `wecom_fake` starts the simulator on a free local port and points
the portal at it (settings for this process, environment for a real worker started afterwards:
request `wecom_fake` before `celery_worker`, whose subprocess copies os.environ at start)."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.test import Client

from wecom.simulator import WeComSimulator


@pytest.fixture
def wecom_fake(settings, monkeypatch):
    sim = WeComSimulator().start()
    for name, value in sim.settings().items():
        setattr(settings, name, value)
        monkeypatch.setenv(name, value)
    cache.clear()  # no access token of an earlier simulator
    try:
        yield sim
    finally:
        sim.stop()
        cache.clear()


CALLBACK = "/wecom/callback/"


def post_event(sim: WeComSimulator, fields: dict | str, client: Client | None = None):
    """Deliver one event as WeCom does (encrypted, signed) through Django's test client."""
    xml = fields if isinstance(fields, str) else sim.event_xml(fields)
    params, envelope = sim.signed_post(xml)
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return (client or Client()).post(f"{CALLBACK}?{query}", data=envelope, content_type="text/xml")
