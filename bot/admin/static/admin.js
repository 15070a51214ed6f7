// Draws each chart from the JSON beside its canvas (the figures are in the table below it too),
// and asks before a form marked data-confirm is sent. The pages work without this script.
"use strict";
document.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
  var source = document.getElementById("chart-" + canvas.dataset.chart);
  if (source && window.Chart) {
    new window.Chart(canvas, JSON.parse(source.textContent));
  }
});
document.querySelectorAll("form[data-confirm]").forEach(function (form) {
  form.addEventListener("submit", function (event) {
    if (!window.confirm(form.dataset.confirm)) {
      event.preventDefault();
    }
  });
});
