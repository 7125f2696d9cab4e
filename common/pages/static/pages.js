// What the pages share: loading a data file (a script that calls
// pageData), numbers and durations as text, a run's state, the scrubber
// (slider, keys, play) and the charts.
"use strict";

const PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2",
                 "#17becf"];

// The data of the script at `src`, loaded afresh (a file:// page cannot
// fetch JSON, but it can run a script again); one load at a time, since
// every data file calls the same function.
let loading = Promise.resolve();
function loadData(src) {
  const load = () => new Promise((resolve, reject) => {
    const script = document.createElement("script");
    window.pageData = resolve;
    script.src = `${src}?t=${Date.now()}`;
    script.onload = () => { script.remove(); reject(new Error(`${src} holds no page data`)); };
    script.onerror = () => { script.remove(); reject(new Error(`cannot read ${src}`)); };
    document.head.append(script);
  });
  const result = loading.then(load);
  loading = result.catch(() => {});
  return result;
}

// An element: el("td", {class: "x"}, "text", child, ...).
function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (value !== null && value !== undefined && value !== false) node.setAttribute(name, value);
  }
  node.append(...children.filter((child) => child !== null && child !== undefined));
  return node;
}

function formatNumber(value) {
  if (value === null || value === undefined) return "—";
  if (Number.isInteger(value)) return String(value);
  const size = Math.abs(value);
  if (size !== 0 && (size >= 1e6 || size < 1e-4)) return value.toExponential(4);
  return String(Number(value.toPrecision(6)));
}

function formatDuration(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  if (seconds < 60) return `${Number(seconds.toPrecision(3))} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ${String(Math.floor(seconds % 60)).padStart(2, "0")} s`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours} h ${String(minutes % 60).padStart(2, "0")} min`;
  return `${Math.floor(hours / 24)} d ${hours % 24} h`;
}

// images/<name>_at_epoch_NNNN.png, as the training loop names them.
function picturePath(directory, name, epoch) {
  return `${directory}/${name}_at_epoch_${String(epoch).padStart(4, "0")}.png`;
}

// The index of the last value <= x in a sorted array (-1: none).
function atOrBefore(sorted, x) {
  let low = 0, high = sorted.length;
  while (low < high) {
    const middle = (low + high) >> 1;
    if (sorted[middle] <= x) low = middle + 1; else high = middle;
  }
  return low - 1;
}

// The index of the value nearest x in a sorted, non-empty array.
function nearest(sorted, x) {
  const i = Math.max(0, atOrBefore(sorted, x));
  return i + 1 < sorted.length && sorted[i + 1] - x < x - sorted[i] ? i + 1 : i;
}

// Seconds of training up to the end of each epoch of a history table.
function elapsed(history) {
  let total = 0;
  return history.seconds.map((seconds) => (total += seconds || 0));
}

// [state, sentence] of a run's summary: training (a training run that wrote
// lately), finished (every epoch asked for) or stopped (killed, or
// interrupted: its data went quiet).
function runState(summary, now = Date.now() / 1000) {
  const of = summary.target ? ` of ${summary.target}` : "";
  if (summary.training && summary.written) {
    const quiet = now - summary.written;
    const patience = summary.seconds ? Math.max(60, 5 * summary.seconds) : 600;
    if (quiet < patience) {
      return ["training", `training: epoch ${summary.epochs}${of} done ${formatDuration(quiet)} ago`];
    }
    if (!(summary.epochs >= summary.target)) {
      return ["stopped", `stopped at epoch ${summary.epochs}${of}: nothing written for ` +
                         `${formatDuration(quiet)} (killed?); run its command to resume`];
    }
  }
  if (summary.epochs >= summary.target) return ["finished", `finished: ${summary.epochs} epochs`];
  return ["stopped", `stopped at epoch ${summary.epochs}${of}`];
}

// The state as a badge, and its sentence as the badge's title.
function stateBadge(summary) {
  const [state, sentence] = runState(summary);
  return el("span", {class: `state ${state}`, title: sentence}, state);
}

// A slider over sorted positions, with previous/next, play/pause at a
// chosen speed, and keys: arrows (Shift: 10 at a time), Page Up/Down (100),
// Home, End, Space. onChange(value, how) is called with how = "user",
// "play" or "set".
class Scrubber {
  constructor(parent, {format, onChange, ready = () => true}) {
    this.format = format;
    this.onChange = onChange;
    this.ready = ready;
    this.positions = [];
    this.index = -1;
    this.timer = null;
    this.slider = el("input", {type: "range", id: "slider", min: 0, max: 0, value: 0,
                               "aria-label": "position",
                               oninput: () => this.select(Number(this.slider.value), "user")});
    this.play = el("button", {id: "play", title: "play / pause (Space)",
                              onclick: () => this.toggle()}, "play");
    this.speed = el("select", {id: "speed", title: "frames per second"},
                    ...[2, 5, 10, 25, 50].map((fps) => el("option", {value: fps,
                                                                      selected: fps === 10},
                                                          `${fps}/s`)));
    this.label = el("span", {id: "position", class: "position"});
    parent.append(el("button", {title: "previous (←)", onclick: () => this.step(-1, "user")}, "◀"),
                  this.slider,
                  el("button", {title: "next (→)", onclick: () => this.step(1, "user")}, "▶"),
                  this.play, this.speed, this.label);
    document.addEventListener("keydown", (event) => this.key(event));
  }

  setPositions(positions) {
    const value = this.value();
    this.positions = positions;
    this.slider.max = Math.max(0, positions.length - 1);
    if (value !== undefined && positions.length) this.index = nearest(positions, value);
    this.index = Math.min(this.index, positions.length - 1);
    this.slider.value = Math.max(0, this.index);
  }

  value() { return this.positions[this.index]; }

  select(index, how = "set") {
    if (!this.positions.length) return;
    this.index = Math.max(0, Math.min(this.positions.length - 1, index));
    this.slider.value = this.index;
    this.label.textContent = this.format(this.value(), this.index, this.positions.length);
    if (how === "user") this.pause();
    this.onChange(this.value(), how);
  }

  selectValue(value, how = "set") { this.select(nearest(this.positions, value), how); }

  step(by, how) { this.select(this.index + by, how); }

  toggle() { if (this.timer === null) this.start(); else this.pause(); }

  start() {
    if (this.index >= this.positions.length - 1) this.select(0, "play");
    this.play.textContent = "pause";
    const tick = () => {
      if (this.ready()) {
        if (this.index >= this.positions.length - 1) return this.pause();
        this.step(1, "play");
      }
      this.timer = setTimeout(tick, 1000 / Number(this.speed.value));
    };
    this.timer = setTimeout(tick, 1000 / Number(this.speed.value));
  }

  pause() {
    clearTimeout(this.timer);
    this.timer = null;
    this.play.textContent = "play";
  }

  key(event) {
    const target = event.target;
    if (event.ctrlKey || event.metaKey || event.altKey ||
        (target.tagName === "INPUT" && target.type !== "range" && target.type !== "checkbox") ||
        target.tagName === "SELECT") return;
    const moves = {ArrowLeft: -1, ArrowRight: 1, ArrowDown: -1, ArrowUp: 1, PageDown: -100,
                   PageUp: 100};
    if (event.key in moves) this.step(moves[event.key] * (event.shiftKey ? 10 : 1), "user");
    else if (event.key === "Home") this.select(0, "user");
    else if (event.key === "End") this.select(this.positions.length - 1, "user");
    else if (event.key === " ") this.toggle();
    else return;
    event.preventDefault();
  }
}

// "Nice" tick values between low and high, about `count` of them.
function ticks(low, high, count) {
  const rough = (high - low) / count;
  const magnitude = 10 ** Math.floor(Math.log10(rough));
  const step = magnitude * [1, 2, 5, 10].find((m) => m * magnitude >= rough * 0.75);
  const values = [];
  for (let t = Math.ceil(low / step) * step; t <= high + step * 1e-9; t += step) {
    values.push(Number(t.toPrecision(12)));
  }
  return values;
}

// A line chart on a canvas: series [{name, x, y}] (y null where not
// measured), a marker at the selected x, the values under the pointer, and
// onPick(x) on a click.
class Chart {
  static MARGIN = {right: 12, top: 8, bottom: 22};  // the left one fits the labels

  constructor(parent, {title, xFormat = formatNumber, onPick}) {
    this.xFormat = xFormat;
    this.onPick = onPick;
    this.series = [];
    this.marked = null;
    this.hover = null;
    this.base = el("canvas");
    this.overlay = el("canvas", {class: "overlay"});
    this.legend = el("span", {class: "legend"});
    this.plot = el("div", {class: "plot"}, this.base, this.overlay);
    this.node = el("figure", {class: "chart", "data-title": title},
                   el("figcaption", {}, title, " ", this.legend), this.plot);
    parent.append(this.node);
    this.overlay.addEventListener("click", (event) => this.onPick(this.xAt(event)));
    this.overlay.addEventListener("mousemove", (event) => { this.hover = this.xAt(event); this.mark(this.marked); });
    this.overlay.addEventListener("mouseleave", () => { this.hover = null; this.mark(this.marked); });
  }

  setSeries(series) {
    this.series = series.map((s, i) => ({...s, color: s.color || PALETTE[i % PALETTE.length]}));
    this.legend.replaceChildren(...this.series.map((s) => el("span", {style: `color: ${s.color}`},
                                                             s.name)));
    this.draw();
  }

  xAt(event) {
    const box = this.overlay.getBoundingClientRect();
    const {left, width} = this.area;
    const share = Math.max(0, Math.min(1, (event.clientX - box.left - left) / width));
    return this.x0 + share * (this.x1 - this.x0);
  }

  draw() {
    const width = this.plot.clientWidth, height = this.plot.clientHeight;
    const ratio = window.devicePixelRatio || 1;
    for (const canvas of [this.base, this.overlay]) {
      canvas.width = width * ratio;
      canvas.height = height * ratio;
      canvas.getContext("2d").setTransform(ratio, 0, 0, ratio, 0, 0);
    }
    const xs = this.series.flatMap((s) => [s.x[0], s.x[s.x.length - 1]]).filter(Number.isFinite);
    const ys = this.series.flatMap((s) => s.y).filter(Number.isFinite);
    [this.x0, this.x1] = xs.length ? [Math.min(...xs), Math.max(...xs)] : [0, 1];
    if (this.x1 === this.x0) this.x1 = this.x0 + 1;
    let y0 = ys.length ? ys.reduce((a, b) => Math.min(a, b)) : 0;
    let y1 = ys.length ? ys.reduce((a, b) => Math.max(a, b)) : 1;
    if (y1 === y0) { y0 -= 1; y1 += 1; }
    const pad = (y1 - y0) * 0.05;
    [this.y0, this.y1] = [y0 - pad, y1 + pad];
    const g = this.base.getContext("2d");
    g.font = "11px system-ui, sans-serif";
    const yTicks = ticks(this.y0, this.y1, 4);
    const decimals = Math.max(0, -Math.floor(Math.log10(yTicks[1] - yTicks[0] || 1)));
    const labels = yTicks.map((t) => Math.abs(t) >= 1e5 ? formatNumber(t) : t.toFixed(decimals));
    const {right, top, bottom} = Chart.MARGIN;
    const left = Math.max(...labels.map((label) => g.measureText(label).width)) + 10;
    this.area = {left, top, width: width - left - right, height: height - top - bottom};
    g.strokeStyle = "#e4e4e4";
    g.fillStyle = "#666";
    g.textAlign = "right";
    g.textBaseline = "middle";
    yTicks.forEach((t, i) => {
      const y = this.py(t);
      g.beginPath(); g.moveTo(left, y); g.lineTo(left + this.area.width, y); g.stroke();
      g.fillText(labels[i], left - 4, y);
    });
    g.textAlign = "center";
    g.textBaseline = "top";
    const whole = this.series.every((s) => s.x.every(Number.isInteger));
    for (const t of ticks(this.x0, this.x1, Math.max(2, Math.floor(this.area.width / 90)))) {
      if (!whole || Number.isInteger(t)) g.fillText(this.xFormat(t), this.px(t), top + this.area.height + 5);
    }
    g.save();
    g.beginPath();
    g.rect(left, top, this.area.width, this.area.height);
    g.clip();
    for (const s of this.series) {
      g.strokeStyle = g.fillStyle = s.color;
      g.lineWidth = 1.25;
      g.beginPath();
      let drawing = false, points = 0;
      for (let i = 0; i < s.x.length; i++) {
        if (!Number.isFinite(s.y[i])) { drawing = false; continue; }
        const x = this.px(s.x[i]), y = this.py(s.y[i]);
        if (drawing) g.lineTo(x, y); else g.moveTo(x, y);
        drawing = true;
        points++;
      }
      g.stroke();
      if (points <= 60) {
        for (let i = 0; i < s.x.length; i++) {
          if (Number.isFinite(s.y[i])) g.fillRect(this.px(s.x[i]) - 2, this.py(s.y[i]) - 2, 4, 4);
        }
      }
    }
    g.restore();
    this.mark(this.marked);
  }

  px(x) { return this.area.left + (x - this.x0) / (this.x1 - this.x0) * this.area.width; }

  py(y) { return this.area.top + (this.y1 - y) / (this.y1 - this.y0) * this.area.height; }

  // Mark x (and the pointer's x, with the values there).
  mark(x) {
    this.marked = x;
    const g = this.overlay.getContext("2d");
    g.clearRect(0, 0, this.overlay.width, this.overlay.height);
    for (const [at, color] of [[x, "#000"], [this.hover, "#999"]]) {
      if (at === null || at === undefined || !this.area) continue;
      g.strokeStyle = color;
      g.beginPath();
      g.moveTo(this.px(at), this.area.top);
      g.lineTo(this.px(at), this.area.top + this.area.height);
      g.stroke();
    }
    if (this.hover === null || !this.area) return;
    const values = this.series.map((s) => {
      const i = s.x.length ? nearest(s.x, this.hover) : -1;
      return i < 0 ? null : [s, s.x[i], s.y[i]];
    }).filter(Boolean);
    if (!values.length) return;
    const text = `${this.xFormat(values[0][1])}: ` +
                 values.map(([s, , y]) => `${s.name} ${formatNumber(y)}`).join(", ");
    g.font = "11px system-ui, sans-serif";
    const width = g.measureText(text).width + 8;
    const left = Math.min(Math.max(this.area.left, this.px(this.hover) + 6),
                          this.area.left + this.area.width - width);
    g.fillStyle = "rgba(255, 255, 255, 0.9)";
    g.fillRect(left, this.area.top + 2, width, 16);
    g.fillStyle = "#222";
    g.textBaseline = "top";
    g.fillText(text, left + 4, this.area.top + 5);
  }
}

// Charts redrawn when the window's width changes.
function redrawOnResize(charts) {
  let pending = false;
  window.addEventListener("resize", () => {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => { pending = false; charts().forEach((chart) => chart.draw()); });
  });
}

// A picture as large as fits `box` and most of the window's height, its
// pixels enlarged as sharp squares (not blurred), or smoothed when it has
// to shrink.
function fitPicture(img, box, height = 0.7) {
  if (!img.naturalWidth) return;
  const style = getComputedStyle(box);
  const width = box.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
  const scale = Math.min(width / img.naturalWidth, (window.innerHeight * height) / img.naturalHeight);
  img.style.width = `${Math.floor(img.naturalWidth * scale)}px`;
  img.style.imageRendering = scale >= 1 ? "pixelated" : "auto";
}
