"""The 数据看板's panel registry: each app contributes its panels here, so the dashboard, its CSV
downloads and the API discover them without this app importing the apps above it.

    from insights.registry import Panel, register_panel

    register_panel(Panel(key="channel_adds", title=_("渠道活码每日新增"), selector=channel_adds,
                         chart={"kind": "stacked_bar"}, section="channels", order=10))

A selector takes a `PanelQuery` (viewer, date_from, date_to, department) and returns `PanelData`:
categories (the x axis), series of numbers (one per category) and, per point, the customer-list
URL that shows the customers behind it (`customer_list_url(...)`). It must count only what the
viewer may see: customers through `customers.selectors` (or the cohort aggregates of
`insights.selectors`), tags through `tags.selectors.visible_tags`.
Register from the app's `AppConfig.ready()`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlencode

from django.urls import reverse

from org.models import Department, Employee


@dataclass(frozen=True)
class PanelQuery:
    """Who asks, and for which days and department (the dashboard's and the API's parameters)."""

    viewer: Employee | None  # None: enterprise level (an API client without `employee=`)
    date_from: dt.date
    date_to: dt.date
    department: Department | None = None

    @property
    def days(self) -> list[dt.date]:
        n = (self.date_to - self.date_from).days + 1
        return [self.date_from + dt.timedelta(days=i) for i in range(n)]

    def list_params(self, **params) -> dict[str, str]:
        """Customer-list parameters with this query's department added."""
        out = {k: str(v) for k, v in params.items() if v not in (None, "")}
        if self.department is not None and "department" not in out:
            out["department"] = str(self.department.pk)
        return out


@dataclass
class Series:
    key: str
    name: str
    data: list
    links: list[str | None] | None = None
    chart: bool = True  # False: in the CSV and the API only (e.g. the counts beside a percentage)


@dataclass
class PanelData:
    categories: list[str]
    series: list[Series]
    category_keys: list | None = None  # machine keys of the categories (dates, ids) for the API and CSV
    summary: dict = field(default_factory=dict)  # headline figures (e.g. {"untagged": 120, "customers": 900})
    as_of: dt.datetime | None = None  # aggregates' time ("数据截至"); None = counted live
    links: dict = field(default_factory=dict)  # other links the panel shows, {label: url}

    def chart_spec(self, chart: dict) -> dict:
        spec = dict(chart)
        spec["categories"] = self.categories
        spec["series"] = [
            {"name": s.name, "data": s.data, "links": s.links or []} for s in self.series if s.chart
        ]
        return spec

    def csv_rows(self) -> list[list]:
        header = ["key", "label", *[s.name for s in self.series]]
        keys = self.category_keys or self.categories
        rows = [header]
        for i, label in enumerate(self.categories):
            key = keys[i]
            rows.append([key.isoformat() if isinstance(key, dt.date) else key, label,
                         *[s.data[i] for s in self.series]])
        return rows


@dataclass(frozen=True)
class Panel:
    """One chart of the dashboard."""

    key: str
    title: str
    selector: Callable[[PanelQuery], PanelData]
    chart: dict  # tp_charts.js spec without the data: {"kind": "bar", "percent": True, ...}
    description: str = ""
    roles: tuple[str, ...] | None = None  # None: everyone who may open the dashboard
    section: str = "customers"
    order: int = 100
    uses_dates: bool = True  # False: a picture of now (coverage); the date range does not apply
    wide: bool = False

    def allowed(self, viewer: Employee | None) -> bool:
        return viewer is None or self.roles is None or viewer.has_role(*self.roles)


SECTIONS = {
    # key: (title, order); titles are looked up lazily by the views (gettext)
    "tags": 10,
    "activity": 20,
    "customers": 30,
    "channels": 40,
    "rules": 50,
}

_panels: dict[str, Panel] = {}


def register_panel(panel: Panel) -> Panel:
    """Add (or replace, by key) a panel. Keys are the API's `insights/{panel}/` names."""
    _panels[panel.key] = panel
    return panel


def unregister_panel(key: str) -> None:
    _panels.pop(key, None)


def panels_for(viewer: Employee | None) -> list[Panel]:
    """The panels `viewer` may see, in dashboard order."""
    return sorted(
        (p for p in _panels.values() if p.allowed(viewer)),
        key=lambda p: (SECTIONS.get(p.section, 99), p.order, p.key),
    )


def get_panel(key: str) -> Panel | None:
    return _panels.get(key)


def customer_list_url(**params) -> str:
    """The customer list (客户列表) filtered by `params` (the list's filter names, API.md)."""
    query = urlencode({k: v for k, v in params.items() if v not in (None, "")})
    base = reverse("admin:customers_customer_changelist")
    return f"{base}?{query}" if query else base
