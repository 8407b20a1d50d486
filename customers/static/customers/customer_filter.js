/* Customer list tag picker: clicking a tag puts it in the chosen mode (包含全部 / 包含任一 / 不含);
   clicking it again in the same mode takes it out. The three hidden inputs carry the API's
   comma-separated `tags_all`, `tags_any`, `tags_none`. */
(function () {
  "use strict";
  function ready(fn) {
    if (document.readyState !== "loading") { fn(); } else { document.addEventListener("DOMContentLoaded", fn); }
  }
  ready(function () {
    var form = document.getElementById("tp-filter");
    if (!form) { return; }
    var modes = ["all", "any", "none"];
    var inputs = {};
    var state = {};
    modes.forEach(function (mode) {
      inputs[mode] = form.querySelector("input[name=tags_" + mode + "]");
      (inputs[mode].value || "").split(",").forEach(function (id) {
        id = id.trim();
        if (id) { state[id] = mode; }
      });
    });
    var labels = {};  // translated in the template, on the mode radios
    form.querySelectorAll("input[name=_tagmode]").forEach(function (radio) {
      labels[radio.value] = radio.dataset.label || radio.value;
    });
    function paint() {
      form.querySelectorAll(".tp-pick").forEach(function (chip) {
        var mode = state[chip.dataset.tag] || "";
        chip.dataset.mode = mode;
        chip.setAttribute("aria-pressed", mode ? "true" : "false");
        chip.title = mode ? labels[mode] : "";
      });
      modes.forEach(function (mode) {
        inputs[mode].value = Object.keys(state).filter(function (id) { return state[id] === mode; }).join(",");
      });
      var summary = form.querySelector(".tp-summary");
      if (summary) {
        summary.textContent = "";
        modes.forEach(function (mode) {
          var names = [];
          form.querySelectorAll(".tp-pick[data-mode=" + mode + "]").forEach(function (chip) {
            names.push(chip.textContent.trim());
          });
          if (names.length) {
            var span = document.createElement("span");
            span.className = "tp-mode-" + mode;
            // The page's own punctuation ("：" "、" in Chinese, ": " ", " in English).
            span.textContent = labels[mode] + (summary.dataset.colon || "：") + names.join(summary.dataset.sep || "、");
            summary.appendChild(span);
          }
        });
        if (!summary.childNodes.length) {
          var none = document.createElement("span");
          none.className = "tp-muted";
          none.textContent = summary.dataset.empty || "";
          summary.appendChild(none);
        }
      }
    }
    form.addEventListener("click", function (event) {
      var chip = event.target.closest(".tp-pick");
      if (!chip) { return; }
      var checked = form.querySelector("input[name=_tagmode]:checked");
      var mode = checked ? checked.value : "all";
      var id = chip.dataset.tag;
      if (state[id] === mode) { delete state[id]; } else { state[id] = mode; }
      paint();
    });
    form.addEventListener("submit", function () {
      // Empty fields would only clutter the address (and the exports' links): leave them out.
      form.querySelectorAll("input, select").forEach(function (el) {
        if (el.name && (el.value === "" || el.name === "_tagmode")) { el.disabled = true; }
      });
    });
    paint();
    exactCount();
  });

  /* The page counts matches only up to a cap (fast); the exact "N matching" follows from the server. */
  function exactCount() {
    var holder = document.querySelector(".tp-count[data-count-url]");
    if (!holder || !window.fetch) { return; }
    fetch(holder.dataset.countUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (data) {
        if (!data || typeof data.count !== "number") { return; }
        var text = data.count.toLocaleString();
        document.querySelectorAll("[data-exact-count]").forEach(function (el) { el.textContent = text; });
        document.querySelectorAll("[data-counting]").forEach(function (el) { el.remove(); });
      })
      .catch(function () { /* keep the lower bound shown */ });
  }
})();
