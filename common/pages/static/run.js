// A run's page: the epoch's picture under a slider over every saved epoch,
// that epoch's history and metrics rows, the curves, the run's settings and
// the command that resumes it; it reads index-data.js again every few
// seconds, and in follow mode shows each new epoch as it comes.
"use strict";

const page = {data: null, picture: "image", charts: [], panels: ""};
const $ = (id) => document.getElementById(id);
const img = $("picture");
const follow = $("follow");
const scrubber = new Scrubber($("scrubber"), {
  format: (epoch, i, n) => `epoch ${epoch} · ${i + 1} of ${n} saved`,
  onChange: (epoch, how) => { if (how === "user") follow.checked = false; show(epoch, how); },
  ready: () => img.complete,
});

function show(epoch, how) {
  const data = page.data;
  const src = picturePath("images", page.picture, epoch);
  if (img.getAttribute("src") !== src) {
    $("frame").classList.remove("missing");
    img.src = src;
  }
  const next = data.saved[scrubber.index + 1];
  if (how === "play" && next) new Image().src = picturePath("images", page.picture, next);
  $("goto").value = epoch;
  $("epoch").textContent = `Epoch ${epoch}`;
  rowTable($("row"), data.history, epoch, {"trained for": elapsed(data.history)});
  const scores = data.metrics.epoch || [];
  const scored = scores[atOrBefore(scores, epoch)];
  $("scored").textContent = scored === undefined ? "Metrics: none scored by this epoch"
    : scored === epoch ? `Metrics at epoch ${epoch}`
    : `Metrics at epoch ${scored}, the last scored before`;
  rowTable($("scores"), data.metrics, scored);
  page.charts.forEach((chart) => chart.mark(epoch));
  for (const button of $("milestones").children) {
    button.classList.toggle("on", Number(button.dataset.epoch) === epoch);
  }
  const where = follow.checked ? "latest" : `epoch=${epoch}`;
  history.replaceState(null, "", `#${where}&picture=${page.picture}`);
}

// The row of `table` ({column: values}) at `epoch`, a line per column.
function rowTable(node, table, epoch, extra = {}) {
  const epochs = table.epoch || [];
  const i = atOrBefore(epochs, epoch);
  node.replaceChildren();
  if (epoch === undefined || epochs[i] !== epoch) return;
  for (const column of Object.keys(table).filter((c) => c !== "epoch")) {
    node.append(el("tr", {"data-column": column}, el("th", {}, column),
                   el("td", {}, formatNumber(table[column][i]))));
  }
  for (const [name, values] of Object.entries(extra)) {
    node.append(el("tr", {"data-column": name}, el("th", {}, name),
                   el("td", {}, formatDuration(values[i]))));
  }
}

function receive(data) {
  const first = page.data === null;
  const changed = first || data.summary.written !== page.data.summary.written;
  page.data = data;
  $("state").replaceChildren(stateBadge(data.summary));
  $("sentence").textContent = runState(data.summary)[1];
  if (!changed) return;
  if (first) setUp(data);
  drawCharts(data);
  const current = scrubber.value();
  scrubber.setPositions(data.saved);
  milestones(data);
  const wanted = Number(asked().get("epoch"));
  if (!data.saved.length) $("epoch").textContent = "No picture saved yet";
  else if (follow.checked) scrubber.select(data.saved.length - 1, "set");
  else if (first && wanted) scrubber.selectValue(wanted);
  else if (first) scrubber.select(data.saved.length - 1);
  else scrubber.selectValue(current);  // its metrics may have come; after a resume, it may be gone
  if (first) performance.mark("interactive");
}

// What the address asks for: #epoch=N or #latest (following), &picture=NAME.
function asked() {
  return new URLSearchParams(location.hash.slice(1));
}

function setUp(data) {
  document.title = `${data.name}: ${data.model}`;
  $("name").textContent = data.name;
  $("up").hidden = !data.index;
  const picture = asked().get("picture");
  if (data.pictures.includes(picture)) page.picture = picture;
  follow.checked = runState(data.summary)[0] === "training" && !asked().has("epoch");
  const settings = [["model", data.model], ["preset", data.preset], ["data set", data.dataset],
                    ["read from", data.data], ["device", data.device], ["seed", data.seed],
                    ["batch size", data.batch_size], ["epochs asked", data.epochs],
                    ["started", data.started]];
  $("settings").replaceChildren(...settings.flatMap(([name, value]) => [
    el("dt", {}, name), el("dd", {"data-setting": name}, value ?? "—")]));
  $("command").textContent = data.command || "—";
  tabs(data);
}

function tabs(data) {
  $("tabs").replaceChildren(...(data.pictures.length > 1 ? data.pictures : []).map((name, i) =>
    el("button", {"data-picture": name, class: name === page.picture ? "on" : null,
                  title: `key ${i + 1}`, onclick: () => choose(name)}, name.replace(/_/g, " "))));
}

function choose(name) {
  page.picture = name;
  tabs(page.data);
  milestones(page.data);
  show(scrubber.value(), "set");
}

function milestones(data) {
  const saved = new Set(data.saved);
  const epochs = [...new Set([data.saved[0], ...data.milestones.filter((e) => saved.has(e)),
                              data.saved[data.saved.length - 1]])].filter(Boolean);
  $("milestones").replaceChildren(...epochs.map((epoch) =>
    el("button", {"data-epoch": epoch, class: epoch === scrubber.value() ? "on" : null,
                  onclick: () => { follow.checked = false; scrubber.selectValue(epoch, "user"); }},
       el("img", {src: picturePath("images", page.picture, epoch), loading: "lazy", alt: ""}),
       `${epoch === data.saved[data.saved.length - 1] ? "latest " : ""}${epoch}`)));
}

function drawCharts(data) {
  const key = JSON.stringify(data.panels);
  if (key !== page.panels) {
    page.panels = key;
    $("charts").replaceChildren();
    page.charts = data.panels.map((panel) => Object.assign(
      new Chart($("charts"), {title: panel.title, onPick: (x) => {
        follow.checked = false;
        scrubber.selectValue(x, "user");
      }}), {panel}));
  }
  for (const chart of page.charts) {
    const table = data[chart.panel.table];
    chart.setSeries(chart.panel.columns.map((column) => ({name: column, x: table.epoch,
                                                          y: table[column]})));
  }
}

function refresh() {
  loadData("index-data.js").then((data) => {
    receive(data);
    setTimeout(refresh, data.summary.training ? 2000 : 10000);
  }, (error) => {
    $("sentence").textContent = `${error.message}: is this page in its run directory?`;
    setTimeout(refresh, 10000);
  });
}

img.addEventListener("load", () => fitPicture(img, $("frame")));
img.addEventListener("error", () => $("frame").classList.add("missing"));
follow.addEventListener("change", () => {
  if (page.data) scrubber.select(follow.checked ? page.data.saved.length - 1 : scrubber.index);
});
$("goto").addEventListener("change", (event) => {
  follow.checked = false;
  scrubber.selectValue(Number(event.target.value), "user");
});
document.addEventListener("keydown", (event) => {
  if (event.target.tagName === "INPUT" && event.target.type === "number") return;
  if (event.key === "f" || event.key === "F") follow.click();
  const name = page.data && page.data.pictures[Number(event.key) - 1];
  if (name) choose(name);
});
window.addEventListener("resize", () => fitPicture(img, $("frame")));
redrawOnResize(() => page.charts);
refresh();
