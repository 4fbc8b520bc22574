// Charts drawn with the locally served Chart.js. Each chart reads its data from a JSON block
// (<script type="application/json">) named by the canvas's data-chart attribute; the same
// figures are always on the page as a table, so the chart is never the only way to read them.
document.addEventListener("DOMContentLoaded", () => {
  if (typeof window.Chart === "undefined") return;
  // Colours that keep 3:1 contrast on white and stay apart for common colour-vision deficiencies.
  const colours = ["#1d5fa8", "#b35c00", "#2a7d3f", "#8a3ffc", "#a2191f", "#005d5d"];
  document.querySelectorAll("canvas[data-chart]").forEach((canvas) => {
    const source = document.getElementById(canvas.dataset.chart);
    if (!source) return;
    const data = JSON.parse(source.textContent);
    new window.Chart(canvas, {
      type: "bar",
      data: {
        labels: data.labels,
        datasets: data.series.map((series, i) => ({
          label: series.name,
          data: series.values,
          backgroundColor: colours[i % colours.length],
        })),
      },
      options: {
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        scales: {
          x: { stacked: true },
          y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } },
        },
        plugins: { legend: { display: data.series.length > 1 } },
      },
    });
  });
});
