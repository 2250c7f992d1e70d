// Progressive enhancement only: every page works without this file.
(function () {
  "use strict";

  // Township picker: show only the townships of the chosen county.
  function townshipPicker(county) {
    var target = document.getElementById(county.getAttribute("data-township-picker"));
    if (!target) return;
    var groups = Array.prototype.slice.call(target.querySelectorAll("optgroup")).map(function (g) {
      return g.cloneNode(true);
    });
    var empty = target.querySelector("option[value='']");
    var emptyClone = empty ? empty.cloneNode(true) : null;
    function update() {
      var chosen = target.value;
      target.innerHTML = "";
      if (emptyClone) target.appendChild(emptyClone.cloneNode(true));
      groups.forEach(function (g) {
        if (!county.value || g.getAttribute("data-county") === county.value) {
          var copy = g.cloneNode(true);
          target.appendChild(county.value ? flatten(copy) : copy);
        }
      });
      target.value = chosen;
      if (target.value !== chosen) target.value = "";
    }
    function flatten(group) {
      var frag = document.createDocumentFragment();
      Array.prototype.slice.call(group.children).forEach(function (o) { frag.appendChild(o); });
      return frag;
    }
    county.addEventListener("change", update);
    update();
  }

  // "Add a party" buttons clone the last row of a group with the next index.
  function addParty(button) {
    var group = document.querySelector(".parties[data-group='" + button.getAttribute("data-add-party") + "']");
    if (!group) return;
    button.addEventListener("click", function () {
      var rows = group.querySelectorAll("fieldset.party");
      var last = rows[rows.length - 1];
      var index = rows.length;
      var copy = last.cloneNode(true);
      copy.querySelectorAll("input, label, p, ul").forEach(function (el) {
        ["name", "id", "for", "aria-describedby"].forEach(function (attr) {
          var v = el.getAttribute(attr);
          if (v) el.setAttribute(attr, v.replace(/\.(\d+)\./g, "." + index + ".").replace(/-(\d+)-/g, "-" + index + "-"));
        });
        if (el.tagName === "INPUT") { el.value = ""; el.removeAttribute("aria-invalid"); el.removeAttribute("required"); }
        if (el.classList && el.classList.contains("field-errors")) el.remove();
      });
      var legend = copy.querySelector("legend");
      if (legend) legend.textContent = legend.textContent.replace(/\s*\d+$/, "") + " " + (index + 1);
      group.appendChild(copy);
      var first = copy.querySelector("input");
      if (first) first.focus();
    });
  }

  // Forms that ask before an irreversible step.
  function confirmSubmit(form) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(form.getAttribute("data-confirm"))) event.preventDefault();
    });
  }

  // Charts on the leadership page: data from a JSON block, drawn by ECharts when present.
  function charts() {
    if (typeof window.echarts === "undefined") return;
    document.querySelectorAll("[data-chart]").forEach(function (el) {
      var source = document.getElementById(el.getAttribute("data-chart"));
      if (!source) return;
      var option = JSON.parse(source.textContent);
      var chart = window.echarts.init(el, null, { renderer: "canvas" });
      chart.setOption(option);
      el.setAttribute("data-rendered", "true");
      window.addEventListener("resize", function () { chart.resize(); });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-township-picker]").forEach(townshipPicker);
    document.querySelectorAll("[data-add-party]").forEach(addParty);
    document.querySelectorAll("form[data-confirm]").forEach(confirmSubmit);
    var summary = document.getElementById("error-summary");
    if (summary) summary.focus();
    charts();
  });
})();
