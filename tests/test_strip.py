"""python -m common.strip: a run's pictures of chosen epochs side by side,
from the files the run wrote."""
import numpy as np
from conftest import run_script
from PIL import Image

from common import images
from common.rundir import RunDir


def fake_run(path, epochs, shape=(20, 30)):
    """A run directory holding config.json and the main picture of each of
    `epochs`, every pixel of epoch e equal to e."""
    run = RunDir(path)
    run.images.mkdir(parents=True)
    run.config_file.write_text("{}")
    for epoch in epochs:
        images.save_png(np.full(shape, epoch, np.uint8), run.image_path(epoch))
    return run


def test_a_strip_is_each_epoch_s_picture_labelled_left_to_right(tmp_path):
    run = fake_run(tmp_path / "run", (1, 2, 5, 10))
    done = run_script("-m", "common.strip", run.path, "--epochs", "10,1,5", "--out",
                      tmp_path / "strip.png")
    assert done.returncode == 0, done.stderr
    with Image.open(tmp_path / "strip.png") as picture:
        strip = np.asarray(picture)
    label = images.LABEL_HEIGHT
    assert strip.shape == (label + 20, 3 * 30 + 2 * 8)
    # the epochs in order (1, 5, 10: the list is sorted), each under its label
    body = strip[label:]
    assert [int(body[0, x]) for x in (0, 38, 76)] == [1, 5, 10]
    assert (body[:, 30:38] == 0).all()  # the gap between two pictures


def test_an_epoch_without_a_picture_is_one_line_naming_those_the_run_has(tmp_path):
    run = fake_run(tmp_path / "run", (1, 2, 3, 7))
    done = run_script("-m", "common.strip", run.path, "--epochs", "4", "--out",
                      tmp_path / "strip.png")
    assert done.returncode == 2 and done.stderr.splitlines() == [
        f"python -m common.strip: error: {run.path} has no picture of epoch 4; it has epochs "
        "1-3, 7"]
    assert not (tmp_path / "strip.png").exists()
