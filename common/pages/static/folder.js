// The index of a directory of runs: a card per run (its latest picture,
// model, epochs, Frechet distance, seconds per epoch, state) linking to its
// page, and links to the comparisons and folders of runs beside them. The
// cards of training runs follow their runs' own data.
"use strict";

const $ = (id) => document.getElementById(id);
let cards = [];  // {href, summary} of each run

function card(run) {
  const s = run.summary;
  const base = run.href;
  return el("article", {class: "card", "data-run": s.name},
    el("a", {href: `${base}/index.html`},
       s.picture ? el("img", {src: `${base}/${s.picture}`, alt: `${s.name}, epoch ${s.epochs}`})
                 : el("span", {class: "muted"}, "no picture yet")),
    el("h2", {}, el("a", {href: `${base}/index.html`}, s.name), stateBadge(s)),
    el("p", {class: "muted"}, [s.model, s.preset, s.dataset].filter(Boolean).join(" · ")),
    el("p", {"data-field": "epochs"}, `epoch ${s.epochs}${s.target ? ` / ${s.target}` : ""}`),
    el("p", {"data-field": "fd"}, s.fd === null ? "FD: not scored"
                                                : `FD ${formatNumber(s.fd)} at epoch ${s.fd_epoch}`),
    el("p", {"data-field": "seconds"}, `${formatDuration(s.seconds)} per epoch`),
    el("p", {class: "muted", "data-field": "state"}, runState(s)[1]));
}

function render() {
  $("cards").replaceChildren(...cards.map(card));
}

function receive(data) {
  $("name").textContent = `Runs in ${data.name}`;
  document.title = `runs in ${data.name}`;
  cards = data.runs.map((run) => ({href: run.href, summary: run}));
  if (!data.runs.length) $("sentence").textContent = "no runs here yet";
  $("links").replaceChildren(...[["comparison report", data.reports], ["folder of runs", data.folders]]
    .flatMap(([kind, links]) => links.map((link) =>
      el("article", {class: "card"}, el("h2", {}, el("a", {href: link.href}, link.name)),
         el("p", {class: "muted"}, kind)))));
}

// This index again (a run started or ended), then the data of each
// training run, one after the other.
async function refresh() {
  try {
    receive(await loadData("index-data.js"));
    for (const run of cards) {
      if (!run.summary.training) continue;
      try {
        run.summary = (await loadData(`${run.href}/index-data.js`)).summary;
      } catch (error) {
        run.summary.training = false;  // its page is gone: show what its files said
      }
    }
    render();
  } catch (error) {
    $("sentence").textContent = `${error.message}: is this page in its directory of runs?`;
  }
  setTimeout(refresh, 5000);
}

refresh().then(() => performance.mark("interactive"));
