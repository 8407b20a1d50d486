"""Template tags that draw a chart from a JSON spec with the vendored ECharts (see
`insights/static/insights/tp_charts.js` for the spec). Any app's page may use them:

    {% load tp_charts %}
    {% block extrahead %}{{ block.super }}{% tp_charts_js %}{% endblock %}
    {% tp_chart spec chart_id="adds-per-day" height=320 %}
"""

from django import template
from django.templatetags.static import static
from django.utils.html import format_html, json_script
from django.utils.translation import gettext

register = template.Library()


@register.simple_tag
def tp_charts_js():
    """The script tags: ECharts itself, then the portal's helper (which draws every chart on load)."""
    return format_html(
        '<link rel="stylesheet" href="{}"><script src="{}"></script><script src="{}" defer></script>',
        static("insights/tp_charts.css"),
        static("insights/echarts/echarts.min.js"),
        static("insights/tp_charts.js"),
    )


@register.inclusion_tag("insights/_chart.html")
def tp_chart(spec: dict, chart_id: str, height: int = 300, label: str = ""):
    """A chart container drawn from `spec` (a dict: kind, categories, series, links…)."""
    if "empty" not in spec:  # the "nothing to draw" text in the page's language
        spec = {**spec, "empty": gettext("暂无数据")}
    return {
        "chart_id": chart_id,
        "height": height,
        "label": label,
        "spec_json": json_script(spec, f"{chart_id}-spec"),
    }
