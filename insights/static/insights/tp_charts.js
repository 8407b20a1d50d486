/* tagportal charts: draws a chart from a small JSON spec with the vendored Apache ECharts,
 * in the admin's light theme (colours read from the admin's CSS variables), Chinese labels.
 *
 * Use it from a template through the `tp_chart` tag (insights/templatetags/tp_charts.py):
 *
 *   {% load tp_charts %}{% tp_charts_js %}
 *   {% tp_chart spec chart_id="my-chart" %}
 *
 * or by hand: <div class="tp-chart" data-tp-chart="ID-spec"></div> plus
 * <script type="application/json" id="ID-spec">{...}</script>; every such element is drawn on load.
 *
 * The spec (all keys optional except kind):
 *   kind        "bar" | "line" | "stacked_bar" | "hbar" | "pie"
 *   categories  x-axis labels (bar/line/stacked_bar), y-axis labels (hbar)
 *   series      [{name, data: [numbers], links: [url or null per point]}]  (pie: one series;
 *               its data are numbers matched with categories)
 *   percent     true: values are 0..100 and shown with "%"
 *   links       one url per category, used when a series has no links of its own
 *   empty       text when there is nothing to draw (default 暂无数据)
 *   option      raw ECharts option keys merged on top (for what the spec does not cover)
 * A point with a link is clickable and opens the link (the filtered customer list).
 */
(function () {
  "use strict";

  var THEME = "tagportal";
  var registered = false;

  function cssVar(name, fallback) {
    var v = getComputedStyle(document.documentElement).getPropertyValue(name);
    return (v && v.trim()) || fallback;
  }

  function registerTheme() {
    if (registered || !window.echarts) return;
    var fg = cssVar("--body-fg", "#333");
    var quiet = cssVar("--body-quiet-color", "#666");
    var hair = cssVar("--hairline-color", "#e8e8e8");
    var border = cssVar("--border-color", "#ccc");
    var axis = {
      axisLine: { lineStyle: { color: border } },
      axisTick: { lineStyle: { color: border } },
      axisLabel: { color: quiet },
      splitLine: { lineStyle: { color: hair } },
      nameTextStyle: { color: quiet },
    };
    window.echarts.registerTheme(THEME, {
      // the admin's blues first (--secondary, --primary), then calm companions
      color: [
        cssVar("--secondary", "#417690"), cssVar("--primary", "#79aec8"), "#e3a33b", "#5b9f6b",
        "#b5545c", "#8a6fb3", "#4fa3a5", "#c07a4a", "#7f8c8d", "#d4b84a",
      ],
      backgroundColor: "transparent",
      textStyle: { color: fg, fontFamily: cssVar("--font-family-primary", "sans-serif") },
      title: { textStyle: { color: fg }, subtextStyle: { color: quiet } },
      legend: { textStyle: { color: quiet } },
      tooltip: { backgroundColor: cssVar("--body-bg", "#fff"), borderColor: border, textStyle: { color: fg } },
      categoryAxis: axis,
      valueAxis: axis,
    });
    registered = true;
  }

  function isNarrow(el) {
    return (el.clientWidth || window.innerWidth) < 480;
  }

  function seriesLinks(spec, s) {
    return s.links || spec.links || [];
  }

  function fmt(spec) {
    return function (v) {
      if (v === null || v === undefined) return "-";
      return spec.percent ? Number(v).toFixed(1) + "%" : Number(v).toLocaleString("zh-CN");
    };
  }

  function buildOption(spec, el) {
    var narrow = isNarrow(el);
    var f = fmt(spec);
    var series = spec.series || [];
    var cats = spec.categories || [];
    var multi = series.length > 1;
    var option = {
      animation: false,
      tooltip: {
        trigger: spec.kind === "pie" ? "item" : "axis",
        confine: true,
        valueFormatter: f,
      },
      grid: { left: 8, right: narrow ? 8 : 24, top: multi ? 40 : 16, bottom: 8, containLabel: true },
    };
    if (multi || spec.kind === "pie") {
      option.legend = { type: "scroll", top: 0 };
    }
    if (spec.kind === "pie") {
      var s0 = series[0] || { data: [] };
      var links = seriesLinks(spec, s0);
      option.legend.show = !narrow;
      option.series = [{
        type: "pie",
        name: s0.name,
        radius: narrow ? ["30%", "60%"] : ["35%", "65%"],
        top: narrow ? 0 : 24,
        data: cats.map(function (c, i) { return { name: c, value: s0.data[i], link: links[i] || null }; }),
        label: { formatter: "{b}: {c}" },
      }];
      return option;
    }
    var horizontal = spec.kind === "hbar";
    var catAxis = {
      type: "category",
      data: cats,
      axisLabel: { hideOverlap: true, width: horizontal ? (narrow ? 90 : 160) : undefined, overflow: "truncate" },
      inverse: horizontal,
    };
    var valAxis = { type: "value", minInterval: spec.percent ? 0 : 1, axisLabel: { formatter: f } };
    if (spec.percent) valAxis.max = 100;
    option.xAxis = horizontal ? valAxis : catAxis;
    option.yAxis = horizontal ? catAxis : valAxis;
    if (horizontal) option.tooltip.axisPointer = { type: "shadow" };
    option.series = series.map(function (s) {
      var links = seriesLinks(spec, s);
      return {
        type: spec.kind === "line" ? "line" : "bar",
        name: s.name,
        stack: spec.kind === "stacked_bar" ? "total" : undefined,
        showSymbol: spec.kind === "line" && cats.length <= 62,
        cursor: links.length ? "pointer" : "default",
        barMaxWidth: 36,
        emphasis: { focus: multi ? "series" : "none" },
        data: (s.data || []).map(function (v, i) { return { value: v, link: links[i] || null }; }),
      };
    });
    return option;
  }

  function merge(target, extra) {
    Object.keys(extra || {}).forEach(function (k) {
      var v = extra[k];
      if (v && typeof v === "object" && !Array.isArray(v) && target[k] && typeof target[k] === "object") {
        merge(target[k], v);
      } else {
        target[k] = v;
      }
    });
    return target;
  }

  function hasData(spec) {
    // zeros are data too (a quiet week, a tag nobody carries); only no points at all is "empty"
    return (spec.series || []).some(function (s) { return (s.data || []).length > 0; });
  }

  /** Draw `spec` into element `el`; returns the ECharts instance (or null when empty). */
  function draw(el, spec) {
    if (!window.echarts) throw new Error("echarts.min.js is not loaded");
    registerTheme();
    var old = window.echarts.getInstanceByDom(el);
    if (old) old.dispose();
    el.classList.remove("tp-chart-empty");
    if (!hasData(spec)) {
      el.classList.add("tp-chart-empty");
      el.textContent = spec.empty || "暂无数据";
      el.setAttribute("data-points", "0");
      return null;
    }
    el.textContent = "";
    var chart = window.echarts.init(el, THEME, { renderer: "canvas", locale: "ZH" });
    chart.setOption(merge(buildOption(spec, el), spec.option));
    chart.on("click", function (p) {
      var link = p.data && p.data.link;
      if (link) window.location.href = link;
    });
    var points = 0;
    (spec.series || []).forEach(function (s) { points += (s.data || []).length; });
    el.setAttribute("data-points", String(points));
    el.setAttribute("data-drawn", "1");
    if (window.ResizeObserver) {
      if (el._tpObserver) el._tpObserver.disconnect();
      var lastNarrow = isNarrow(el);
      el._tpObserver = new ResizeObserver(function () {
        var inst = window.echarts.getInstanceByDom(el);
        if (!inst) return;
        var n = isNarrow(el);
        if (n !== lastNarrow) {
          lastNarrow = n;
          inst.setOption(merge(buildOption(spec, el), spec.option), true);
        }
        inst.resize();
      });
      el._tpObserver.observe(el);
    }
    return chart;
  }

  /** Draw every `[data-tp-chart]` element under `root` from its JSON script. */
  function drawAll(root) {
    (root || document).querySelectorAll("[data-tp-chart]").forEach(function (el) {
      var script = document.getElementById(el.getAttribute("data-tp-chart"));
      if (!script) return;
      draw(el, JSON.parse(script.textContent));
    });
  }

  window.tpCharts = { draw: draw, drawAll: drawAll, buildOption: buildOption };
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { drawAll(); });
  } else {
    drawAll();
  }
})();
