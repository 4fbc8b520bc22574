// The dashboard's weekly trend, drawn with the locally served Chart.js as one line per group.
// The data comes from the JSON block named by the canvas's data-chart attribute; the same
// figures are in the table under the chart, so the chart is never the only way to read them.
document.addEventListener("DOMContentLoaded", () => {
  if (typeof window.Chart === "undefined") return;
  // Colours that keep 3:1 contrast on white and stay apart for common colour-vision deficiencies;
  // each line also has its own point shape, so colour is not the only difference.
  const colours = ["#1d5fa8", "#b35c00", "#2a7d3f", "#8a3ffc", "#a2191f", "#005d5d"];
  const shapes = ["circle", "triangle", "rect", "rectRot", "star", "crossRot"];
  document.querySelectorAll("canvas[data-chart]").forEach((canvas) => {
    const source = document.getElementById(canvas.dataset.chart);
    if (!source) return;
    const data = JSON.parse(source.textContent);
    new window.Chart(canvas, {
      type: "line",
      data: {
        labels: data.labels,
        datasets: data.series.map((series, i) => ({
          label: series.name,
          data: series.values,
          borderColor: colours[i % colours.length],
          backgroundColor: colours[i % colours.length],
          pointStyle: shapes[i % shapes.length],
          pointRadius: 4,
          spanGaps: false,
        })),
      },
      options: {
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        scales: { y: { beginAtZero: true } },
        plugins: { legend: { display: true } },
      },
    });
  });
});
