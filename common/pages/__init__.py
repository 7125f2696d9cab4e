"""The pages a person opens in a browser to watch and browse runs: a run's
index.html (its pictures under a slider, its history, curves and settings,
kept current while it trains), index.html of the directory that holds runs
(outputs/), and the comparison's report.html.

Each page is a static file, the HTML, CSS and JavaScript of static/ made
into one, beside its data, `<page>-data.js`, a script that calls
pageData({...}). A page opened from the file system may not fetch() a JSON
file, but it may load a script, and load it again to follow a run. Both are
written atomically, so a killed run leaves a page that opens."""
import json
import math
import os
import re
import statistics
import time
import urllib.parse
from pathlib import Path

from common.atomic import atomic_write
from common.errors import UsageError
from common.evaluation.metrics import LABELS
from common.rundir import PAGE, PAGE_DATA, RunDir

STATIC = Path(__file__).with_name("static")
# The report's epochs, one click away on every page that has them.
MILESTONES = (5, 50, 100, 250, 500, 1000, 1250, 1500, 1750, 2000, 2500)
# Every page written here says so; an index.html without it is not ours to replace.
GENERATOR = '<meta name="generator" content="gan-vae-mnist pages">'
TIMING = ("seconds", "train_seconds", "images_per_sec")
MEMORY = ("host_mb", "device_mb")
# metrics.csv's curves, a panel each, as the comparison plots them.
METRIC_PANELS = [{"title": title, "table": "metrics", "columns": columns} for title, columns in (
    (f"{LABELS['fd']} (lower is better)", ["fd"]),
    (f"{LABELS['kid']} (lower is better)", ["kid"]),
    (LABELS["classifier_score"], ["classifier_score"]),
    (LABELS["coverage"], ["coverage"]),
    ("precision and recall (k=3)", ["precision", "recall"]))]


class RunPage:
    """A run's index.html and index-data.js while it trains: both written
    when training starts, the data again after every epoch, and with the
    run marked as no longer training at the end; the index of the directory
    holding the run is rewritten at the start and at the end. `plots` is
    the model's {panel title: history columns}; `history`, the rows the
    caller has read already (else history.csv is read), and will extend.

    An update costs milliseconds at thousands of epochs (bench/pages.py):
    only the rows and pictures of epochs it has not seen are read."""

    def __init__(self, run, plots=None, history=None):
        self.run = run
        config = run.read_config() or {}
        self.index = _index_beside(run)
        self.settings = {"name": run.path.name, **_settings(config),
                         "command": config.get("command"), "index": self.index is not None}
        self.plots = plots
        self.training = True
        self.history, self.metrics, self.metrics_stamp = _Columns(), ([], {}), None
        self.names, self.pictured = [], set()
        self.update(run.read_table("history") if history is None else history)
        _write_page(run.page, "run.html")
        self._write_index()

    def update(self, history):
        """Rewrite the data from the history rows (those of history.csv)."""
        for row in self.history.extend(history):
            if self.run.image_path(row["epoch"]).exists():
                self.pictured.add(row["epoch"])
        if self.pictured and not self.names:  # the first pictures: which are there?
            self.names = _listing(self.run)[0]
        saved = _saved(history, self.pictured)
        metrics, scores = self._read_metrics()
        _write_data(self.run.page_data, {
            **self.settings, "panels": _panels(self.plots, self.history.columns, metrics),
            "pictures": self.names, "saved": saved, "milestones": MILESTONES,
            "history": _ordered(self.history.columns), "metrics": scores,
            "summary": summary(self.settings, history, metrics, saved, self.training)})

    def _read_metrics(self):
        """metrics.csv's rows and their columns, read again only when the
        file changed."""
        try:
            stat = self.run.table("metrics").path.stat()
        except FileNotFoundError:
            return [], {}
        if (stat.st_mtime_ns, stat.st_size) != self.metrics_stamp:
            rows = self.run.read_table("metrics")
            self.metrics, self.metrics_stamp = (rows, _table(rows)), (stat.st_mtime_ns, stat.st_size)
        return self.metrics

    def finish(self, history):
        self.training = False
        self.update(history)
        self._write_index()

    def _write_index(self):
        if self.index is None:
            return
        try:
            write_index(self.index)
        except OSError as error:
            print(f"Could not write {self.index / PAGE} ({error}); "
                  f"{self.run.page} is the run's page", flush=True)


class _Columns:
    """A table's rows as {column: [values]}, kept as the rows grow: `extend`
    converts only the rows it has not seen (a new list of rows whose first
    rows are the ones seen keeps them)."""

    def __init__(self):
        self.rows, self.columns = [], {}

    def extend(self, rows):
        """Take `rows`; returns those not seen before."""
        same = 0
        for seen, row in zip(self.rows, rows):
            if seen is not row:
                break
            same += 1
        for values in self.columns.values():
            del values[same:]
        self.rows = list(rows)
        for i, row in enumerate(rows[same:], same):
            for column in row:
                self.columns.setdefault(column, [None] * i)
            for column, values in self.columns.items():
                values.append(_number(row.get(column)))
        return rows[same:]


def summary(settings, history, metrics, saved, training, written=None):
    """What the directory's index shows of a run: its latest picture,
    epochs, Frechet distance, seconds per epoch, and whether it trains.
    `written` is when a run's data was last written (now by default)."""
    fd = [row for row in metrics if row.get("fd") is not None and math.isfinite(row["fd"])]
    return {"name": settings["name"], "model": settings.get("model"),
            "preset": settings.get("preset"), "dataset": settings.get("dataset"),
            "epochs": history[-1]["epoch"] if history else 0, "target": settings.get("epochs"),
            "picture": RunDir("").image_path(saved[-1]).as_posix() if saved else None,
            "fd": fd[-1]["fd"] if fd else None, "fd_epoch": fd[-1]["epoch"] if fd else None,
            "seconds": statistics.median(row["seconds"] for row in history) if history else None,
            "training": training, "written": time.time() if written is None else written}


def write_index(directory):
    """index.html of a directory of runs: a card for each run in it (from
    its files, so runs made before the pages are there too), and links to
    the comparison reports and the folders of runs beside them."""
    directory = Path(directory)
    cards, reports, folders = [], [], []
    for child in sorted(path for path in directory.iterdir() if path.is_dir()):
        href = urllib.parse.quote(child.name)
        if (child / "config.json").exists():
            try:
                cards.append({**_summary_of(RunDir(child)), "href": href})
            except (UsageError, OSError, ValueError, KeyError):
                continue  # unreadable: not a run to show
        elif (child / "report.html").exists():
            reports.append({"name": child.name, "href": f"{href}/report.html"})
        elif _ours(child / PAGE):
            folders.append({"name": child.name, "href": f"{href}/index.html"})
    _write_data(directory / PAGE_DATA, {"name": directory.resolve().name, "runs": cards,
                                              "reports": reports, "folders": folders})
    _write_page(directory / PAGE, "folder.html")


def write_report(loaded, out):
    """report.html in `out`: the runs of `loaded` (as compare.load gives
    them: name, path, history and metrics rows) side by side."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    runs = []
    for entry in loaded:
        run = RunDir(entry["path"])
        names, pictured = _listing(run)
        runs.append({**_settings(run.read_config() or {}), "name": entry["name"],
                     "href": _relative(run.page, out) if _ours(run.page) else None,
                     "images": _relative(run.images, out), "pictures": names,
                     "saved": _saved(entry["history"], pictured),
                     "history": _table(entry["history"]), "metrics": _table(entry["metrics"])})
    panels = [{"title": "seconds per epoch", "table": "history", "columns": ["seconds"]},
              *METRIC_PANELS]
    _write_data(out / "report-data.js", {"runs": runs, "panels": panels, "milestones": MILESTONES})
    _write_page(out / "report.html", "report.html")
    return out / "report.html"


def _settings(config):
    args = config.get("args") or {}
    return {"model": config.get("model"), "preset": args.get("preset"),
            "dataset": args.get("dataset"), "device": config.get("device"),
            "seed": args.get("seed"), "batch_size": args.get("batch_size"),
            "epochs": args.get("epochs"), "data": config.get("data"),
            "started": config.get("started")}


def _summary_of(run):
    """summary() of a run from its files; whether it trains, and since
    when, from its page's data when it has one."""
    history = run.read_table("history")
    data = _read_data(run.page_data)
    if data:
        training, written = data["summary"]["training"], data["summary"]["written"]
    else:  # made before the pages
        training, written = False, run.table("history").path.stat().st_mtime if history else None
    return summary({"name": run.path.name, **_settings(run.read_config() or {})}, history,
                   run.read_table("metrics"), _saved(history, _listing(run)[1]), training, written)


def _listing(run):
    """The names of the run's pictures ("image" first), and the epochs that
    have the main picture."""
    found = run.pictures()
    return sorted(found, key=lambda name: (name != "image", name)), set(found.get("image", ()))


def _saved(history, pictured):
    """The epochs of the history that have a picture, in order."""
    return [row["epoch"] for row in history if row["epoch"] in pictured]


def _panels(plots, columns, metrics):
    """The curves to draw, [{title, table, columns}]: the model's panels
    (`plots`; or one per column of the model's when not known) of the
    history's `columns`, seconds per epoch, memory, and the metrics when
    the run has any."""
    if plots is None:
        plots = {column: (column,) for column in columns
                 if column not in ("epoch", *TIMING, *MEMORY)}
    history_panels = {**plots, "seconds per epoch (the whole epoch; its train steps)":
                      TIMING[:2], "memory (MB)": MEMORY}
    panels = [{"title": title, "table": "history", "columns": [c for c in wanted if c in columns]}
              for title, wanted in history_panels.items()]
    return [panel for panel in panels if panel["columns"]] + (METRIC_PANELS if metrics else [])


def _table(rows):
    """Rows as {column: [values]}; values not measured are null."""
    table = _Columns()
    table.extend(rows)
    return _ordered(table.columns)


def _ordered(columns):
    """The columns in history.csv's order: epoch and timing, the model's, memory."""
    first, last = ("epoch", *TIMING), MEMORY
    return {name: columns[name] for name in sorted(
        columns, key=lambda name: (name not in first, name in last,
                                   first.index(name) if name in first else 0))}


def _number(value):
    if isinstance(value, int) or value is None:
        return value
    return float(f"{value:.7g}") if math.isfinite(value) else None  # as history.csv holds it


def _relative(path, start):
    return urllib.parse.quote(Path(os.path.relpath(path, start)).as_posix())


def _write_data(path, data):
    text = json.dumps(data, separators=(",", ":"), allow_nan=False)
    with atomic_write(path, "w") as f:
        f.write(f"pageData({text});\n")


def _read_data(path):
    """The data a page's data file holds, or None when there is none."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    return json.loads(text[len("pageData("):text.rindex(")")])


def _write_page(path, template):
    """static/`template` into `path`, its stylesheet and scripts inlined."""
    html = (STATIC / template).read_text()
    html = re.sub(r'<link rel="stylesheet" href="([\w.]+)">',
                  lambda m: f"<style>\n{(STATIC / m[1]).read_text()}</style>", html)
    html = re.sub(r'<script src="([\w.]+)"></script>',
                  lambda m: f"<script>\n{(STATIC / m[1]).read_text()}</script>", html)
    with atomic_write(path, "w") as f:
        f.write(html)


def _ours(path):
    """Whether `path` is a page written here."""
    try:
        with open(path) as f:
            return GENERATOR in f.read(1000)
    except FileNotFoundError:
        return False


def _index_beside(run):
    """The directory that holds `run`, whose index lists it; None when that
    directory is a run itself or holds an index.html of another making."""
    directory = run.path.resolve().parent
    page = directory / PAGE
    if (directory / "config.json").exists() or (page.exists() and not _ours(page)):
        return None
    return directory
