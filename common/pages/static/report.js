// The comparison: the runs' pictures side by side under one slider, at
// equal epochs or at equal training time, each with its metrics at that
// point, and the metrics' curves of every run on shared axes.
"use strict";

const report = {data: null, mode: "epoch", charts: []};
const $ = (id) => document.getElementById(id);
const scrubber = new Scrubber($("scrubber"), {
  format: (value) => report.mode === "epoch" ? `epoch ${value}`
                                             : `${formatDuration(value)} of training`,
  onChange: (value) => show(value),
  ready: () => [...document.querySelectorAll("#runs img")].every((img) => img.complete),
});

// Each run's epochs as the slider's positions in this mode: the epoch, or
// the training seconds at its end.
function at(run, epochs) {
  if (report.mode === "epoch") return epochs;
  return epochs.map((epoch) => run.elapsed[atOrBefore(run.history.epoch, epoch)]);
}

// The run's last saved epoch at `value` (undefined before its first).
function shownEpoch(run, value) {
  return run.saved[atOrBefore(at(run, run.saved), value)];
}

function show(value) {
  for (const run of report.data.runs) {
    const epoch = shownEpoch(run, value);
    const node = run.card;
    const img = node.querySelector("img");
    node.querySelector(".frame").classList.toggle("missing", epoch === undefined);
    if (epoch !== undefined) img.src = picturePath(run.images, "image", epoch);
    const last = run.saved[run.saved.length - 1];
    node.querySelector(".when").textContent = epoch === undefined ? "no picture yet"
      : `epoch ${epoch} · ${formatDuration(run.elapsed[atOrBefore(run.history.epoch, epoch)])}` +
        ` of training${epoch === last && value > at(run, [last])[0] ? " (its last)" : ""}`;
    const scores = run.metrics.epoch || [];
    const i = epoch === undefined ? -1 : atOrBefore(scores, epoch);
    node.querySelector(".scored").textContent = i < 0 ? "no metrics by then"
                                                      : `metrics at epoch ${scores[i]}`;
    node.querySelector("table").replaceChildren(...(i < 0 ? [] : metricColumns().map((column) =>
      el("tr", {"data-column": column}, el("th", {}, column),
         el("td", {}, formatNumber(run.metrics[column][i]))))));
  }
  report.charts.forEach((chart) => chart.mark(value));
  for (const button of $("milestones").children) {
    button.classList.toggle("on", Number(button.dataset.epoch) === value);
  }
  history.replaceState(null, "", `#${report.mode}=${value}`);
}

function metricColumns() {
  return report.data.panels.filter((p) => p.table === "metrics").flatMap((p) => p.columns);
}

function setMode(mode, value) {
  const runs = report.data.runs;
  const before = runs.map((run) => shownEpoch(run, scrubber.value())).find((e) => e !== undefined);
  report.mode = mode;
  for (const button of $("modes").children) button.classList.toggle("on", button.dataset.mode === mode);
  scrubber.setPositions([...new Set(runs.flatMap((run) => at(run, run.saved)))].sort((a, b) => a - b));
  const saved = new Set(runs.flatMap((run) => run.saved));
  $("milestones").replaceChildren(...(mode === "epoch" ? report.data.milestones : [])
    .filter((epoch) => saved.has(epoch)).map((epoch) =>
      el("button", {"data-epoch": epoch, onclick: () => scrubber.selectValue(epoch, "user")},
         `epoch ${epoch}`)));
  drawCharts();
  if (value !== undefined) scrubber.selectValue(value);
  else if (before !== undefined) scrubber.selectValue(at(runs[0], [before])[0]);
  else scrubber.select(0);
}

function drawCharts() {
  const runs = report.data.runs;
  for (const chart of report.charts) {
    const {table, columns} = chart.panel;
    chart.xFormat = report.mode === "epoch" ? formatNumber : formatDuration;
    chart.setSeries(runs.flatMap((run) => columns.filter((c) => run[table][c]).map((column) => ({
      name: columns.length > 1 ? `${run.name} ${column}` : run.name,
      x: at(run, run[table].epoch || []), y: run[table][column]}))));
  }
}

function receive(data) {
  report.data = data;
  for (const run of data.runs) {
    run.elapsed = elapsed(run.history);
    const img = el("img", {alt: run.name});
    const frame = el("div", {class: "frame"}, img);
    img.addEventListener("load", () => fitPicture(img, frame));
    run.card = el("article", {class: "card", "data-run": run.name},
      el("h2", {}, run.href ? el("a", {href: run.href}, run.name) : run.name,
         el("span", {class: "muted"}, run.model)),
      frame, el("p", {class: "when"}), el("p", {class: "scored muted"}), el("table"));
  }
  $("runs").replaceChildren(...data.runs.map((run) => run.card));
  report.charts = data.panels.map((panel) => Object.assign(
    new Chart($("charts"), {title: panel.title, onPick: (x) => scrubber.selectValue(x, "user")}),
    {panel}));
  const [mode, value] = location.hash.slice(1).split("=");
  setMode(mode === "time" ? "time" : "epoch", value ? Number(value) : undefined);
  performance.mark("interactive");
}

for (const button of $("modes").children) {
  button.addEventListener("click", () => setMode(button.dataset.mode));
}
redrawOnResize(() => report.charts);
loadData("report-data.js").then(receive, (error) => {
  $("runs").replaceChildren(el("p", {class: "error"}, `${error.message}: is this page beside it?`));
});
