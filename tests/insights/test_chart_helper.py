"""The vendored ECharts and the shared chart tag other apps reuse on their pages."""

import json
import re

from django.contrib.staticfiles import finders
from django.template import Context, Template
from django.utils import translation


def test_echarts_is_vendored_with_its_licence():
    js = finders.find("insights/echarts/echarts.min.js")
    assert js, "echarts.min.js is served from our static files (no CDN)"
    with open(js, encoding="utf-8") as f:
        head = f.read(2000)
    assert "Apache Software Foundation" in head
    for name in ("LICENSE", "NOTICE", "README.md", "licenses/LICENSE-d3"):
        assert finders.find(f"insights/echarts/{name}"), name
    with open(finders.find("insights/echarts/README.md"), encoding="utf-8") as f:
        readme = f.read()
    assert "6.1.0" in readme and "Apache License 2.0" in readme


def test_chart_tag_renders_a_container_and_its_spec():
    spec = {"kind": "bar", "categories": ["一月", "二月"], "series": [{"name": "新增", "data": [3, 5],
            "links": ["/admin/customers/customer/?a=1", None]}]}
    with translation.override("zh-hans"):
        html = Template('{% load tp_charts %}{% tp_charts_js %}{% tp_chart spec chart_id="c1" height=240 %}').render(
            Context({"spec": spec})
        )
    assert "insights/echarts/echarts.min.js" in html and "insights/tp_charts.js" in html
    assert 'data-tp-chart="c1-spec"' in html and "height: 240px" in html
    payload = re.search(r'<script id="c1-spec" type="application/json">(.*?)</script>', html, re.S).group(1)
    assert json.loads(payload) == {**spec, "empty": "暂无数据"}


def test_chart_tag_says_no_data_in_the_pages_language():
    """A chart with nothing to draw on an English page says so in English (the tag fills `empty`)."""
    spec = {"kind": "bar", "categories": [], "series": []}
    with translation.override("en"):
        html = Template('{% load tp_charts %}{% tp_chart spec chart_id="c2" %}').render(Context({"spec": spec}))
    payload = re.search(r'<script id="c2-spec" type="application/json">(.*?)</script>', html, re.S).group(1)
    assert json.loads(payload)["empty"] == "No data"
