// drain's dashboard: draws every element with class "chart" from the JSON its data-api URL
// answers (the shape is in drain/web/dashboard/charts.py), with uPlot, in UTC. Text from the
// data is only ever written with textContent (uPlot's legend does the same). No inline
// script: the page's Content-Security-Policy is script-src 'self'.
(function () {
  "use strict";

  // id -> {plot, data}: the drawn charts, for the console and the browser tests
  var charts = {};
  window.drainCharts = charts;

  var palette = [
    "#5b3cc4", "#12805c", "#d9480f", "#1971c2", "#c2255c", "#2b8a3e",
    "#e8590c", "#5f3dc4", "#0b7285", "#a61e4d", "#5c940d", "#364fc7",
  ];
  var height = 340;
  var fmtDay = uPlotFormat("{YYYY}-{MM}-{DD}");
  var fmtDayTime = uPlotFormat("{MM}-{DD} {HH}:{mm}");
  var fmtTime = uPlotFormat("{HH}:{mm}");

  function uPlotFormat(template) {
    return function (date) { return window.uPlot ? uPlot.fmtDate(template)(date) : ""; };
  }

  function utcDate(ts) { return uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC"); }

  // x-axis labels in 24-hour UTC: times within a day, day and time over a few days, days
  function xLabels(u, splits) {
    var span = splits.length > 1 ? splits[splits.length - 1] - splits[0] : 0;
    var format = span > 14 * 86400 ? fmtDay : span > 86400 ? fmtDayTime : fmtTime;
    return splits.map(function (ts) { return format(utcDate(ts)); });
  }

  function note(el, text) {
    var target = document.getElementById(el.id + "-note");
    if (target) { target.textContent = text; }
  }

  function describe(data) {
    var parts = [];
    if (data.omitted_series) {
      parts.push(data.omitted_series + " smaller series left out of the chart");
    }
    if (data.live_from) {
      parts.push("buckets from " + data.live_from.replace("T", " ").slice(0, 19) +
        " UTC computed from raw_events now");
    }
    if (data.note) { parts.push(data.note); }
    return parts.join("; ");
  }

  function draw(el) {
    var url = el.getAttribute("data-api");
    var key = el.getAttribute("data-key");
    el.setAttribute("data-state", "loading");
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        return response.json().then(function (body) {
          if (!response.ok) { throw new Error(body.error || ("HTTP " + response.status)); }
          return body;
        });
      })
      .then(function (body) {
        var data = key ? body[key] : body;
        charts[el.id] = { plot: null, data: data };
        if (!data || !data.x.length) {
          el.classList.add("empty");
          el.setAttribute("data-state", "empty");
          note(el, "No data in this range.");
          return;
        }
        var many = data.x.length > 150;
        var series = [{ label: "time (UTC)" }];
        data.series.forEach(function (s, i) {
          series.push({
            label: s.label,
            stroke: palette[i % palette.length],
            width: 2,
            spanGaps: false,
            points: { show: !many, size: 6 },
          });
        });
        var opts = {
          width: Math.max(el.clientWidth, 320),
          height: height,
          tzDate: utcDate,
          scales: {
            // the page's range (rounded out to whole buckets), not the data's extent: one
            // bucket alone would otherwise get a span of years
            x: { time: true, range: function () { return data.x_range.slice(); } },
            y: {
              range: function (u, min, max) {
                var low = Math.min(0, min);
                var high = max > low ? max + (max - low) * 0.08 : low + 1;
                return [low, high];
              },
            },
          },
          series: series,
          axes: [{ values: xLabels, space: 70 }, { label: data.unit, size: 80 }],
          legend: { live: true },
          cursor: { points: { size: 8 } },
        };
        var columns = [data.x].concat(data.series.map(function (s) { return s.values; }));
        var plot = new uPlot(opts, columns, el);
        charts[el.id] = { plot: plot, data: data };
        el.setAttribute("data-state", "ready");
        note(el, describe(data));
      })
      .catch(function (error) {
        el.classList.add("failed");
        el.setAttribute("data-state", "failed");
        note(el, "Could not load the chart: " + error.message);
      });
  }

  function resize() {
    Object.keys(charts).forEach(function (id) {
      var chart = charts[id];
      var el = document.getElementById(id);
      if (chart.plot && el) {
        chart.plot.setSize({ width: Math.max(el.clientWidth, 320), height: height });
      }
    });
  }

  function wireFilters() {
    var form = document.getElementById("filters");
    if (!form) { return; }
    var range = document.getElementById("range");
    var custom = document.getElementById("custom-range");
    range.addEventListener("change", function () {
      if (range.value === "custom") {
        custom.classList.add("shown");
      } else {
        form.submit();
      }
    });
    ["refresh", "measure", "reason"].forEach(function (id) {
      var input = document.getElementById(id);
      if (input) { input.addEventListener("change", function () { form.submit(); }); }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    wireFilters();
    Array.prototype.forEach.call(document.querySelectorAll(".chart[data-api]"), draw);
    var timer = null;
    window.addEventListener("resize", function () {
      clearTimeout(timer);
      timer = setTimeout(resize, 150);
    });
    var refresh = parseInt(document.body.getAttribute("data-refresh") || "0", 10);
    if (refresh > 0) {
      setTimeout(function () { window.location.reload(); }, refresh * 1000);
    }
  });
})();
