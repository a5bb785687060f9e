// Report charts: every <canvas data-chart="id"> is drawn from the JSON in <script id="id" type="application/json">
// (written by Django's json_script). Colours come from the page's CSS variables, so charts follow the
// light/dark theme and are redrawn when it changes. No inline scripts: the CSP forbids them.
(function () {
  "use strict";

  var charts = [];

  function cssVar(name, fallback) {
    var value = getComputedStyle(document.documentElement).getPropertyValue("--" + name).trim();
    return value || fallback;
  }

  function colour(name) {
    var fallbacks = { ok: "#116329", danger: "#b42318", warn: "#7d4e00", accent: "#0b5cad", violet: "#8250df", muted: "#57606a" };
    if (name === "violet") return cssVar("chart-violet", fallbacks.violet);
    return cssVar(name, fallbacks[name] || fallbacks.accent);
  }

  function formatNumber(value, percent) {
    if (value === null || value === undefined) return "–";
    if (percent) return value.toFixed(1) + " %";
    return Number(value).toLocaleString();
  }

  function config(spec) {
    var text = cssVar("text", "#1b1f24");
    var grid = cssVar("border", "#d0d7de");
    var percent = !!spec.percent;
    var datasets = spec.datasets.map(function (ds) {
      var c = colour(ds.color);
      return {
        label: ds.label,
        data: ds.data,
        borderColor: c,
        backgroundColor: spec.type === "bar" ? c : "transparent",
        borderWidth: 2,
        maxBarThickness: 28,
        pointRadius: spec.labels.length > 45 ? 0 : 2,
        spanGaps: true,
        tension: 0.2
      };
    });
    (spec.thresholds || []).forEach(function (t) {
      datasets.push({
        label: t.label,
        data: spec.labels.map(function () { return t.value; }),
        borderColor: cssVar("muted", "#57606a"),
        borderDash: [6, 4],
        borderWidth: 1,
        pointRadius: 0,
        backgroundColor: "transparent",
        type: "line"
      });
    });
    var valueAxis = {
      beginAtZero: true,
      stacked: !!spec.stacked,
      ticks: { color: text, callback: function (v) { return formatNumber(v, percent); } },
      grid: { color: grid }
    };
    if (spec.min !== undefined) valueAxis.min = spec.min;
    if (spec.max !== undefined) valueAxis.max = spec.max;
    var labelAxis = { stacked: !!spec.stacked, ticks: { color: text, autoSkip: true, maxRotation: 0 }, grid: { color: grid } };
    var horizontal = !!spec.horizontal;
    return {
      type: spec.type || "line",
      data: { labels: spec.labels, datasets: datasets },
      options: {
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        indexAxis: horizontal ? "y" : "x",
        interaction: { mode: "index", intersect: false },
        scales: horizontal ? { x: valueAxis, y: labelAxis } : { x: labelAxis, y: valueAxis },
        plugins: {
          legend: { display: datasets.length > 1, labels: { color: text } },
          tooltip: {
            callbacks: {
              label: function (ctx) {
                var v = horizontal ? ctx.parsed.x : ctx.parsed.y;
                return ctx.dataset.label + ": " + formatNumber(v, percent);
              }
            }
          }
        }
      }
    };
  }

  function drawAll() {
    charts.forEach(function (chart) { chart.destroy(); });
    charts = [];
    if (typeof window.Chart === "undefined") return;
    document.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
      var source = document.getElementById(canvas.getAttribute("data-chart"));
      if (!source) return;
      var spec;
      try { spec = JSON.parse(source.textContent); } catch (e) { return; }
      charts.push(new window.Chart(canvas, config(spec)));
      canvas.setAttribute("data-chart-ready", "true");
    });
  }

  // Choosing dates in the range picker means a custom range.
  document.addEventListener("change", function (event) {
    var input = event.target;
    if (!input.closest || !input.closest("[data-testid=range-form]")) return;
    if (input.name === "from" || input.name === "to") {
      var select = input.form && input.form.querySelector("select[name=range]");
      if (select) select.value = "custom";
    }
  });

  document.addEventListener("DOMContentLoaded", function () {
    drawAll();
    // The theme toggle flips data-theme on <html>; the system theme can change too.
    new MutationObserver(drawAll).observe(document.documentElement, { attributes: true, attributeFilter: ["data-theme"] });
    window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", drawAll);
  });
})();
