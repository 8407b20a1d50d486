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
    var labels = { all: "包含全部", any: "包含任一", none: "不含" };
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
  });
})();
