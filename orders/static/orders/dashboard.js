/* The staff dashboard's charts: one per currency, paid and refunded bars per day and
 * the net as a line, drawn with the vendored Chart.js from the figures the page carries
 * (json_script "dashboard-chart-data").
 *
 * Tooltips show the amounts as the server formatted them (payments_project.money):
 * this script formats no money of its own, except the y axis ticks, which Chart.js
 * picks; they go through Intl.NumberFormat with the chart's currency. The amounts are
 * decimal strings, turned into numbers for plotting only. Without JavaScript the table
 * under each chart shows the same figures. */
(function () {
  "use strict";
  var source = document.getElementById("dashboard-chart-data");
  if (!source || typeof window.Chart === "undefined") {
    return;
  }
  var language = document.documentElement.lang || "en";
  var colors = { paid: "#417690", refunded: "#ba2121", net: "#333333" };

  function tickFormat(code) {
    try {
      var format = new Intl.NumberFormat(language, {
        style: "currency", currency: code, notation: "compact",
      });
      return function (value) { return format.format(value); };
    } catch (error) {
      return function (value) { return value + " " + code; };
    }
  }

  JSON.parse(source.textContent).forEach(function (chart) {
    var canvas = document.getElementById("dashboard-chart-" + chart.currency);
    if (!canvas) {
      return;
    }
    var texts = { paid: chart.paid_text, refunded: chart.refunded_text, net: chart.net_text };
    function dataset(key, label, type) {
      return {
        key: key,
        label: label,
        type: type,
        data: chart[key].map(Number),
        backgroundColor: colors[key],
        borderColor: colors[key],
        pointRadius: type === "line" ? 2 : undefined,
        order: type === "line" ? 0 : 1,
      };
    }
    new window.Chart(canvas, {
      type: "bar",
      data: {
        labels: chart.labels,
        datasets: [
          dataset("paid", "Paid", "bar"),
          dataset("refunded", "Refunded", "bar"),
          dataset("net", "Net", "line"),
        ],
      },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        interaction: { mode: "index", intersect: false },
        scales: {
          x: { title: { display: true, text: "Day" } },
          y: {
            beginAtZero: true,
            title: { display: true, text: chart.code },
            ticks: { callback: tickFormat(chart.code) },
          },
        },
        plugins: {
          tooltip: {
            callbacks: {
              title: function (items) { return chart.days[items[0].dataIndex]; },
              label: function (item) {
                return item.dataset.label + ": " + texts[item.dataset.key][item.dataIndex];
              },
            },
          },
        },
      },
    });
  });
})();
