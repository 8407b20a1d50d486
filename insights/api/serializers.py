"""How a panel's data looks in the API (and to the dashboard's own JavaScript, which reads the same)."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from ..registry import Panel, PanelData, PanelQuery


def _key(value):
    return value.isoformat() if isinstance(value, dt.date) else value


def panel_info(panel: Panel) -> dict:
    return {"key": panel.key, "title": str(panel.title), "description": str(panel.description),
            "section": panel.section, "uses_dates": panel.uses_dates}


def panel_payload(panel: Panel, q: PanelQuery, data: PanelData) -> dict:
    """`{"panel", "title", "from", "to", "department", "as_of", "categories", "keys", "series":
    [{"key", "name", "data", "links"}], "summary", "links", "chart"}`."""
    return {
        "panel": panel.key,
        "title": str(panel.title),
        "from": q.date_from.isoformat() if panel.uses_dates else None,
        "to": q.date_to.isoformat() if panel.uses_dates else None,
        "department": q.department.pk if q.department else None,
        "as_of": timezone.localtime(data.as_of).isoformat() if data.as_of else None,
        "categories": [str(c) for c in data.categories],
        "keys": [_key(k) for k in (data.category_keys or data.categories)],
        "series": [{"key": s.key, "name": str(s.name), "data": s.data, "links": s.links or [], "chart": s.chart}
                   for s in data.series],
        "summary": data.summary,
        "links": {str(k): v for k, v in data.links.items()},
        "chart": panel.chart,
    }
