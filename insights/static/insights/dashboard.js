/* 数据看板: fetch each panel's data from the API (the same numbers BI tools get) and draw it with
 * tpCharts (tp_charts.js). Every point links to the customer list filtered to the customers behind it. */
(function () {
  "use strict";

  var root = document.querySelector(".tp-dash");
  if (!root) return;
  var texts = JSON.parse(document.getElementById("tp-dash-texts").textContent);
  var api = root.getAttribute("data-api");
  var query = root.getAttribute("data-query");

  function fmt(template, values) {
    return template.replace(/\{(\w+)\}/g, function (_m, k) {
      var v = values[k];
      return typeof v === "number" ? v.toLocaleString("zh-CN") : (v === undefined ? "" : String(v));
    });
  }

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function hhmm(iso) {
    // the API gives local time with its offset (Asia/Shanghai): show it as written, whatever the browser's zone
    return iso.slice(0, 16).replace("T", " ");
  }

  function summary(card, data) {
    var box = card.querySelector("[data-summary]");
    var s = data.summary || {};
    box.textContent = "";
    if (s.untagged !== undefined) {
      var a = el("a", { href: s.untagged_url, "data-untagged": String(s.untagged) },
        fmt(texts.untagged, { n: s.untagged }));
      box.appendChild(a);
      box.appendChild(document.createTextNode(" " + fmt(texts.untagged_share, { share: s.untagged_share, total: s.customers })));
    } else if (s.unused !== undefined) {
      box.textContent = fmt(texts.unused, { n: s.unused, total: s.visible_tags, days: s.days });
    } else if (s.new !== undefined) {
      box.textContent = fmt(texts.new_lost, { new: s.new, lost: s.lost });
    } else if (s.changes !== undefined) {
      box.textContent = fmt(texts.changes, { n: s.changes });
    } else if (s.added !== undefined) {
      box.textContent = fmt(texts.added, { n: s.added });
    } else if (s.hits !== undefined) {
      box.textContent = fmt(texts.hits, { n: s.hits });
    } else if (s.tagged !== undefined) {
      box.textContent = fmt(texts.tagged, { n: s.tagged });
    } else if (s.customers !== undefined) {
      box.textContent = fmt(texts.customers, { n: s.customers });
    }
  }

  function foot(card, data) {
    var asof = card.querySelector("[data-asof]");
    asof.textContent = data.as_of ? fmt(texts.as_of, { t: hhmm(data.as_of) }) : texts.live;
    var links = card.querySelector("[data-links]");
    links.textContent = "";
    Object.keys(data.links || {}).forEach(function (label) {
      links.appendChild(el("a", { href: data.links[label] }, label));
    });
  }

  function spec(data) {
    var s = { kind: data.chart.kind, percent: !!data.chart.percent, categories: data.categories, empty: texts.empty };
    s.series = data.series.filter(function (x) { return x.chart; }).map(function (x) {
      return { name: x.name, data: x.data, links: x.links };
    });
    if (data.chart.kind === "hbar" && data.categories.length > 12) {
      s.option = { dataZoom: [{ type: "inside", yAxisIndex: 0, startValue: 0, endValue: 11 },
                              { type: "slider", yAxisIndex: 0, startValue: 0, endValue: 11, width: 14, right: 4 }] };
    }
    return s;
  }

  function load(card) {
    var key = card.getAttribute("data-panel");
    var chart = card.querySelector("[data-chart]");
    fetch(api + encodeURIComponent(key) + "/?" + query, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) {
        return r.json().then(function (body) { return { ok: r.ok, body: body }; });
      })
      .then(function (res) {
        if (!res.ok) throw new Error((res.body.error && res.body.error.message) || texts.failed);
        summary(card, res.body);
        foot(card, res.body);
        window.tpCharts.draw(chart, spec(res.body));
        card.setAttribute("data-loaded", "1");
      })
      .catch(function (err) {
        chart.textContent = texts.failed + "：" + err.message;
        chart.classList.add("tp-chart-empty");
        card.setAttribute("data-loaded", "error");
      });
  }

  function quick(days) {
    var form = root.querySelector(".tp-dash-filter");
    var to = new Date(form.elements.to.max + "T00:00:00");
    var from = new Date(to.getTime() - (days - 1) * 86400000);
    var iso = function (d) { return d.getFullYear() + "-" + String(d.getMonth() + 1).padStart(2, "0") + "-" + String(d.getDate()).padStart(2, "0"); };
    form.elements.from.value = iso(from);
    form.elements.to.value = iso(to);
    form.submit();
  }

  root.querySelectorAll("[data-days]").forEach(function (b) {
    b.addEventListener("click", function () { quick(parseInt(b.getAttribute("data-days"), 10)); });
  });
  root.querySelectorAll("[data-panel]").forEach(load);
})();
