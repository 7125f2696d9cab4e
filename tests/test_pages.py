"""The pages (common/pages): a run's index.html, the index of the directory
that holds runs and the comparison's report.html, opened from the file
system in a real browser, headless Chromium driven by Playwright; those
tests are skipped, saying why, only when no Chromium can be started. With
PAGES_SCREENSHOT=path the run page's screenshot is copied there (the one in
docs/)."""
import contextlib
import csv
import json
import os
import shlex
import shutil
import signal
import subprocess
import time

import numpy as np
import pytest
from conftest import command, environment, history, unavailable, write_mnist
from PIL import Image
from playwright.sync_api import Error, sync_playwright

from bench.pages import PLOTS, fake_run
from common import arguments, pages
from common.rundir import RunDir
from gan_keras import train as gan_train
from vae_keras import train as vae_train

# Headless Chromium as root, in a container, with nothing to reach outside.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")


@pytest.fixture(scope="module")
def outputs(synthetic_mnist, tmp_path_factory):
    """outputs/ of two real tiny runs: a DCGAN (6 epochs, scored every
    2nd) and a conditional VAE (3 epochs, two pictures an epoch)."""
    outputs = tmp_path_factory.mktemp("runs") / "outputs"
    common = ["--data-dir", str(synthetic_mnist), "--seed", "1", "--metrics-every", "2",
              "--metrics-samples", "64"]
    assert gan_train.main([*common, "--out", str(outputs / "dcgan"), "--epochs", "6",
                           "--batch-size", "64"]) == 0
    assert vae_train.main([*common, "--model", "cvae", "--out", str(outputs / "cvae"),
                           "--epochs", "3"]) == 0
    return outputs


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium: the system's, else Playwright's own; skip without."""
    executable = next(filter(None, map(shutil.which, CHROMIUM_NAMES)), None)
    with sync_playwright() as playwright:
        try:
            chromium = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        except Error as error:
            unavailable("chromium", f"no Chromium can be started ({str(error).splitlines()[0]}); "
                                    f"install it (apt-get install chromium) to test the pages")
        yield chromium
        chromium.close()


@contextlib.contextmanager
def opened(browser, path, fragment=""):
    """The page at `path`, interactive, with the files it asked for in
    page.requested; on leaving, it must have logged no error (a script's,
    or a file it could not load)."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(15_000)
    page.requested, errors = [], []
    page.on("request", lambda request: page.requested.append(request.url))
    page.on("console", lambda message: errors.append(message.text)
            if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(path.resolve().as_uri() + fragment)
    page.wait_for_function("performance.getEntriesByName('interactive').length > 0")
    yield page
    assert errors == []
    page.close()


def shown(page):
    """The epoch the run page shows, once its picture has loaded; checks
    that the picture is that epoch's."""
    page.wait_for_function("document.getElementById('picture').complete")
    epoch = int(page.locator("#epoch").text_content().split()[-1])
    src = page.get_attribute("#picture", "src")
    assert src.endswith(f"_at_epoch_{epoch:04d}.png"), (src, epoch)
    assert page.evaluate("document.getElementById('picture').naturalWidth") > 0
    return epoch


def table(page, selector):
    """{column: text} of a row table on a page."""
    return {row.get_attribute("data-column"): row.locator("td").text_content()
            for row in page.locator(f"{selector} tr").all()}


def read_csv(path):
    with open(path, newline="") as f:
        return {int(row["epoch"]): row for row in csv.DictReader(f)}


def assert_row(shown_row, stored):
    """The page shows the stored row's every measured value, to the six
    significant digits it prints."""
    measured = {column: float(value) for column, value in stored.items()
                if column != "epoch" and value != ""}
    assert set(measured) <= set(shown_row)
    for column, value in measured.items():
        assert float(shown_row[column]) == pytest.approx(value, rel=1e-5, abs=1e-12), column


@pytest.mark.slow
def test_a_run_page_scrubs_every_epoch_of_a_real_run(browser, outputs, tmp_path):
    run = outputs / "dcgan"
    rows, scores = read_csv(run / "history.csv"), read_csv(run / "metrics.csv")
    with opened(browser, run / "index.html") as page:
        assert shown(page) == 6  # the latest
        assert page.locator("#state").text_content() == "finished"
        assert not page.is_checked("#follow")  # a finished run is not followed
        page.locator("#slider").fill("2")
        assert shown(page) == 3
        assert_row(table(page, "#row"), rows[3])
        assert page.locator("#scored").text_content() == "Metrics at epoch 2, the last scored before"
        assert_row(table(page, "#scores"), scores[2])
        page.keyboard.press("ArrowRight")
        assert shown(page) == 4
        assert page.locator("#scored").text_content() == "Metrics at epoch 4"
        assert_row(table(page, "#scores"), scores[4])
        page.click("#milestones button[data-epoch='5']")
        assert shown(page) == 5
        assert_row(table(page, "#row"), rows[5])
        page.keyboard.press("Home")
        assert shown(page) == 1
        assert "#epoch=1" in page.url

        # a click on a curve goes to that epoch: its left end the first, its right the last
        curve = page.locator("figure[data-title='loss'] canvas.overlay")
        box = curve.bounding_box()
        curve.click(position={"x": box["width"] - 2, "y": box["height"] / 2})
        assert shown(page) == 6
        curve.click(position={"x": 2, "y": box["height"] / 2})
        assert shown(page) == 1

        # play runs through the epochs to the last, then stops
        page.select_option("#speed", "50")
        page.keyboard.press(" ")
        page.wait_for_function("document.getElementById('play').textContent === 'play'")
        assert shown(page) == 6

        assert page.locator("[data-setting='model']").text_content() == "dcgan"
        assert page.locator("[data-setting='seed']").text_content() == "1"
        assert page.locator("#command").text_content() == data_of(run)["command"]
        rendering = page.evaluate("getComputedStyle(document.getElementById('picture')).imageRendering")
        assert rendering == "pixelated"
        assert page.evaluate("document.getElementById('picture').width") > 366  # enlarged
        page.mouse.move(0, 0)
        page.screenshot(path=tmp_path / "run-page.png", full_page=True)
    with Image.open(tmp_path / "run-page.png") as screenshot:
        pixels = np.asarray(screenshot.convert("L"))
    assert len(np.unique(pixels)) > 50 and pixels.std() > 20  # not blank: text, picture, curves
    if os.environ.get("PAGES_SCREENSHOT"):
        shutil.copy(tmp_path / "run-page.png", os.environ["PAGES_SCREENSHOT"])


@pytest.mark.slow
def test_a_run_page_switches_between_the_pictures_of_an_epoch(browser, outputs):
    with opened(browser, outputs / "cvae" / "index.html", "#epoch=2") as page:
        assert shown(page) == 2
        assert page.get_attribute("#picture", "src") == "images/image_at_epoch_0002.png"
        page.click("#tabs button[data-picture='digits']")
        assert shown(page) == 2
        assert page.get_attribute("#picture", "src") == "images/digits_at_epoch_0002.png"
        page.keyboard.press("ArrowRight")
        assert page.get_attribute("#picture", "src") == "images/digits_at_epoch_0003.png"
        page.keyboard.press("1")
        assert page.get_attribute("#picture", "src") == "images/image_at_epoch_0003.png"


def data_of(run):
    """What a page's data file holds."""
    text = (run / "index-data.js").read_text()
    assert text.startswith("pageData(") and text.endswith(");\n")
    return json.loads(text[len("pageData("):-len(");\n")])


@pytest.mark.slow
def test_the_command_on_the_page_resumes_the_run(outputs):
    run = outputs / "dcgan"
    argv = shlex.split(data_of(run)["command"])
    assert argv[:2] == ["python", "gan_keras/train.py"]
    args = arguments.parse(gan_train.make_parser(), argv[2:])
    assert RunDir(args.out).path.resolve() == run.resolve()
    parser = gan_train.make_parser()
    RunDir.open(args.out, args.model, vars(args), controls=parser.run_controls())  # not refused
    assert (args.epochs, args.seed, args.batch_size, args.metrics_every) == (6, 1, 64, 2)


@pytest.mark.slow
def test_the_index_has_a_card_per_run_linking_to_its_page(browser, outputs):
    last = read_csv(outputs / "dcgan" / "metrics.csv")[6]
    with opened(browser, outputs / "index.html") as page:
        assert sorted(page.locator(".card[data-run]").evaluate_all(
            "cards => cards.map(card => card.dataset.run)")) == ["cvae", "dcgan"]
        card = page.locator(".card[data-run='dcgan']")
        assert card.locator("[data-field='epochs']").text_content() == "epoch 6 / 6"
        fd = card.locator("[data-field='fd']").text_content().split()
        assert float(fd[1]) == pytest.approx(float(last["fd"]), rel=1e-5) and fd[-1] == "6"
        assert card.locator(".state").text_content() == "finished"
        assert card.locator("img").get_attribute("src") == "dcgan/images/image_at_epoch_0006.png"
        card.locator("h2 a").click()
        page.wait_for_function("performance.getEntriesByName('interactive').length > 0")
        assert page.url.endswith("/dcgan/index.html#epoch=6&picture=image")


@pytest.mark.slow
def test_the_report_shows_the_runs_side_by_side_under_one_slider(browser, outputs, tmp_path):
    loaded = [{"name": name, "path": outputs / name,
               "history": RunDir(outputs / name).read_table("history"),
               "metrics": RunDir(outputs / name).read_table("metrics")}
              for name in ("dcgan", "cvae")]
    report = pages.write_report(loaded, tmp_path / "comparison")

    def pictures(page):
        page.wait_for_function("[...document.querySelectorAll('#runs img')].every(i => i.complete)")
        return [src.rsplit("/", 1)[1] for src in page.locator("#runs img").evaluate_all(
            "images => images.map(image => image.getAttribute('src'))")]

    with opened(browser, report) as page:
        # equal epochs: the slider's positions are the epochs either run saved
        assert pictures(page) == ["image_at_epoch_0001.png"] * 2
        page.click("#milestones button[data-epoch='5']")
        assert pictures(page) == ["image_at_epoch_0005.png", "image_at_epoch_0003.png"]
        assert "(its last)" in page.locator(".card[data-run='cvae'] .when").text_content()
        dcgan = page.locator(".card[data-run='dcgan']")
        assert dcgan.locator(".scored").text_content() == "metrics at epoch 4"
        scores = read_csv(outputs / "dcgan" / "metrics.csv")[4]
        assert_row(table(page, ".card[data-run='dcgan'] table"),
                   {key: scores[key] for key in ("fd", "kid", "precision", "recall")})

        # equal time: each run at its last saved epoch within the time
        page.click("#modes button[data-mode='time']")
        elapsed = {run["name"]: dict(zip((row["epoch"] for row in run["history"]),
                                         np.cumsum([row["seconds"] for row in run["history"]])))
                   for run in loaded}
        moments = sorted({t for times in elapsed.values() for t in times.values()})
        for i in range(len(moments)):
            page.locator("#slider").fill(str(i))
            pictured = pictures(page)
            for name, src in zip(("dcgan", "cvae"), pictured):
                done = [epoch for epoch, t in elapsed[name].items() if t <= moments[i]]
                when = page.locator(f".card[data-run='{name}'] .when").text_content()
                if done:
                    assert src == f"image_at_epoch_{max(done):04d}.png"
                    assert when.startswith(f"epoch {max(done)} · ")
                else:
                    assert when == "no picture yet"
        assert page.url.endswith(f"#time={moments[-1]}")
        curve = page.locator("figure[data-title='seconds per epoch'] canvas.overlay")
        curve.click(position={"x": 2, "y": 20})
        assert page.locator("#slider").input_value() == "0"


@pytest.mark.slow
def test_a_run_page_is_interactive_within_a_second_at_2500_epochs(browser, tmp_path):
    run, rows = fake_run(tmp_path / "run", 2500)
    pages.RunPage(run, PLOTS).finish(rows)
    with opened(browser, run.path / "index.html") as page:
        interactive = page.evaluate("performance.getEntriesByName('interactive')[0].startTime")
        print(f"2500 epochs: interactive {interactive:.0f} ms after the page was opened")
        assert interactive < 1000
        assert shown(page) == 2500
        assert page.locator("#position").text_content() == "epoch 2500 · 2500 of 2500 saved"
        # only the pictures in view were loaded: the epoch's, and the milestones' thumbnails
        page.wait_for_timeout(500)
        loaded = {url for url in page.requested if "/images/" in url}
        assert 1 < len(loaded) <= 1 + len(pages.MILESTONES) + 1, loaded
        page.click("#milestones button[data-epoch='250']")
        assert shown(page) == 250
        page.keyboard.press("PageUp")
        assert shown(page) == 350
        page.keyboard.press("Shift+ArrowLeft")
        assert shown(page) == 340
        # a run that has written nothing for longer than it should is not training
        assert page.evaluate("runState({training: true, written: Date.now() / 1000 - 3600, "
                             "epochs: 5, target: 10, seconds: 2})[0]") == "stopped"


@pytest.mark.slow
def test_follow_mode_shows_new_epochs_and_a_killed_run_keeps_its_page(browser, tmp_path):
    """A page opened while the run trains follows it without a reload; the
    run killed (SIGKILL) leaves a page with every epoch of its history, and
    resumed, a page of the epochs it holds then."""
    out = tmp_path / "outputs" / "dcgan"
    options = ["--data-dir", write_mnist(tmp_path / "data", n_train=512), "--out", out,
               "--batch-size", 64, "--seed", 3, "--metrics-every", 0]
    process = subprocess.Popen(command("gan_keras/train.py", *options, "--epochs", 500),
                               env=environment(), stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300
        while not (out / "history.csv").exists() or len(history(out)) < 2:
            assert process.poll() is None, process.stderr.read()
            assert time.monotonic() < deadline, "no second epoch in time"
            time.sleep(0.1)
        with opened(browser, out / "index.html") as page:
            assert page.locator("#state").text_content() == "training"
            assert page.is_checked("#follow")
            first = shown(page)
            page.evaluate("window.notReloaded = true")
            page.wait_for_function(f"Number(document.getElementById('goto').value) > {first + 1}",
                                   timeout=60_000)
            assert page.evaluate("window.notReloaded")
            assert shown(page) > first + 1

            process.send_signal(signal.SIGKILL)
            process.wait()
            epochs = [int(row["epoch"]) for row in history(out)]
            assert page.url.endswith("#latest&picture=image")
            page.reload()
            page.wait_for_function("performance.getEntriesByName('interactive').length > 0")
            saved = data_of(out)["saved"]
            assert saved[:len(epochs)] == epochs and len(saved) - len(epochs) <= 1
            assert shown(page) == saved[-1]
            page.keyboard.press("Home")
            assert shown(page) == 1
    finally:
        process.kill()
        process.wait()

    resumed = subprocess.run(command("gan_keras/train.py", *options, "--epochs", len(epochs) + 2),
                             env=environment(), capture_output=True, text=True, timeout=600,
                             check=False)
    assert resumed.returncode == 0, resumed.stderr
    epochs = [int(row["epoch"]) for row in history(out)]
    assert epochs == list(range(1, len(epochs) + 1))
    data = data_of(out)
    assert data["saved"] == epochs and data["history"]["epoch"] == epochs
    with opened(browser, out / "index.html") as page:
        assert shown(page) == epochs[-1]
        assert page.locator("#state").text_content() == "finished"
        assert page.locator("#position").text_content() == (
            f"epoch {epochs[-1]} · {len(epochs)} of {len(epochs)} saved")


@pytest.mark.slow
def test_a_run_made_before_the_pages_gets_them_when_opened_again(outputs, tmp_path):
    old = tmp_path / "dcgan"
    shutil.copytree(outputs / "dcgan", old)
    for name in ("index.html", "index-data.js"):
        (old / name).unlink()
    (tmp_path / "index.html").write_text("my own index")
    config = json.loads((old / "config.json").read_text())
    assert gan_train.main(["--out", str(old), "--epochs", "6", "--batch-size", "64", "--data-dir",
                           config["args"]["data_dir"], "--metrics-every", "0"]) == 0
    assert pages.GENERATOR in (old / "index.html").read_text()
    data = data_of(old)
    assert data["saved"] == data["history"]["epoch"] == [1, 2, 3, 4, 5, 6]
    assert data["metrics"]["epoch"] == [2, 4, 6]
    assert not data["index"]  # the index.html beside it is not ours: left alone
    assert (tmp_path / "index.html").read_text() == "my own index"
    assert not (tmp_path / "index-data.js").exists()


def test_fresh_removes_the_page(tmp_path):
    run, rows = fake_run(tmp_path / "run", 3)
    pages.RunPage(run, PLOTS).finish(rows)
    assert (run.path / "index.html").exists() and (tmp_path / "index.html").exists()
    run.start({"model": "dcgan", "args": {}}, fresh=True)
    assert not (run.path / "index.html").exists() and not (run.path / "index-data.js").exists()


def test_the_slider_holds_the_epochs_that_have_a_picture(tmp_path):
    run, rows = fake_run(tmp_path / "run", 5)
    for epoch in (2, 4):  # --save-every 2 would not have saved them
        run.image_path(epoch).unlink()
    page = pages.RunPage(run, PLOTS)
    assert data_of(run.path)["saved"] == [1, 3, 5]
    page.update(rows[:3])  # resumed from the checkpoint of epoch 3
    assert data_of(run.path)["saved"] == [1, 3]
