"""Atomic writes, the run directory's rules, and the pictures module."""
import json
import math
from pathlib import Path

import numpy as np
import pytest
from conftest import run_script
from PIL import Image

from common import images
from common.atomic import atomic_write, check_directory
from common.errors import UsageError
from common.rundir import RunDir


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path):
    target = tmp_path / "history.csv"
    target.write_text("old\n")
    with pytest.raises(RuntimeError):
        with atomic_write(target, "w") as f:
            f.write("half a new fi")
            raise RuntimeError("killed")
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["history.csv"]  # no temporary left
    with atomic_write(target, "w") as f:
        f.write("new\n")
    assert target.read_text() == "new\n"


def test_resuming_a_run_removes_what_killed_writers_left(tmp_path):
    run, _ = RunDir.open(tmp_path, "dcgan", {})
    run.start({"model": "dcgan", "args": {}})
    left = [tmp_path / ".history.csv.tmp-4242",
            tmp_path / "images" / ".image_at_epoch_0003.png.tmp-7"]
    for path in left:
        path.write_text("half a fi")
    (tmp_path / "notes.tmp-1").write_text("mine")  # no leading dot: not atomic_write's
    run.start({"model": "dcgan", "args": {}})
    assert [path for path in left if path.exists()] == []
    assert (tmp_path / "notes.tmp-1").read_text() == "mine"


def _args(**changes):
    return {"model": "dcgan", "batch_size": 256, "seed": 1, "epochs": 10, **changes}


def test_run_directory_refuses_another_run_unless_fresh(tmp_path):
    out = tmp_path / "run"
    run, stored = RunDir.open(out, "dcgan", _args())
    assert stored is None and not out.exists()  # open() writes nothing
    run.start({"model": "dcgan", "args": _args()})
    run.close()  # the run's lock: as if its process had ended
    assert json.loads((out / "config.json").read_text())["args"]["batch_size"] == 256

    # run-control arguments (by their role, as the parser declares them) may change; an
    # unset seed inherits the stored one
    from gan_keras import train

    controls = train.make_parser().run_controls()
    _, stored = RunDir.open(out, "dcgan", _args(epochs=20, seed=None), controls=controls)
    with pytest.raises(UsageError, match="--epochs 10 there, 20 here"):
        RunDir.open(out, "dcgan", _args(epochs=20))  # no controls: every argument defines
    assert stored["args"]["seed"] == 1
    with pytest.raises(UsageError, match="--batch-size 256 there, 128 here"):
        RunDir.open(out, "dcgan", _args(batch_size=128))
    with pytest.raises(UsageError, match="--seed 1 there, 2 here"):
        RunDir.open(out, "dcgan", _args(seed=2))
    with pytest.raises(UsageError, match="model 'dcgan', not 'conv_vae'"):
        RunDir.open(out, "conv_vae", _args(model="conv_vae"))
    _, stored = RunDir.open(out, "conv_vae", _args(model="conv_vae"), fresh=True)
    assert stored is None


def test_fresh_removes_only_what_the_program_wrote(tmp_path):
    run, _ = RunDir.open(tmp_path, "dcgan", {})
    run.start({"model": "dcgan", "args": {}})
    run.write_table("history", [{"epoch": 1, "seconds": 1.5}], ("epoch", "seconds"))
    (tmp_path / "latent_scatter.png").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("mine")
    run.start({"model": "dcgan", "args": {}}, fresh=True)
    assert not (tmp_path / "history.csv").exists()
    assert not (tmp_path / "latent_scatter.png").exists()
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_a_non_empty_directory_without_a_run_is_refused(tmp_path):
    (tmp_path / "thesis.tex").write_text("...")
    with pytest.raises(UsageError, match="not empty and holds no run"):
        RunDir.open(tmp_path, "dcgan", {})


def test_unwritable_out(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(UsageError, match="is a file, not a directory"):
        RunDir.open(tmp_path / "file", "dcgan", {})
    with pytest.raises(UsageError, match="cannot create --out .*file is a file"):
        RunDir.open(tmp_path / "file" / "run", "dcgan", {})


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
def test_a_directory_that_takes_no_files_is_named():
    # /proc refuses new files even to root, with ENOENT: the message must say
    # which directory refused, not only "No such file or directory".
    with pytest.raises(UsageError, match="cannot write to --out /proc/run: /proc takes no new files"):
        check_directory("/proc/run", "--out")


def test_history_round_trip_with_unmeasured_cells(tmp_path):
    run = RunDir(tmp_path)
    rows = [{"epoch": 1, "loss": 0.5}, {"epoch": 2, "loss": 0.25, "test_elbo": -150.0}]
    run.write_table("metrics", rows, ("epoch", "loss", "test_elbo"))
    assert (tmp_path / "metrics.csv").read_text().splitlines() == [
        "epoch,loss,test_elbo", "1,0.5,", "2,0.25,-150"]
    back = run.read_table("metrics")
    assert back[1] == {"epoch": 2, "loss": 0.25, "test_elbo": -150.0}
    assert math.isnan(back[0]["test_elbo"])


def test_grid_tiles_with_grey_gaps():
    tiles = np.stack([np.zeros((28, 28)), np.ones((28, 28)), np.full((28, 28), 0.5)])
    picture = images.grid(tiles, cols=2, scale=1, pad=2)
    assert picture.shape == (2 * 30 + 2, 2 * 30 + 2) and picture.dtype == np.uint8
    assert picture[0, 0] == images.GAP
    assert (picture[2:30, 2:30] == 0).all() and (picture[2:30, 32:60] == 255).all()
    assert (picture[32:60, 2:30] == 128).all()
    assert (picture[32:60, 32:60] == images.GAP).all()  # the empty fourth cell
    assert images.grid(tiles, cols=2, scale=3).shape == (3 * 62, 3 * 62)


def test_gif_keeps_first_and_last_frames_and_thins_the_rest(tmp_path):
    paths = []
    for i in range(7):
        paths.append(tmp_path / f"{i}.png")
        images.save_png(np.full((4, 4), i * 30, np.uint8), paths[-1])
    images.save_gif(paths, tmp_path / "all.gif")
    images.save_gif(paths, tmp_path / "thin.gif", max_frames=3)
    with Image.open(tmp_path / "all.gif") as gif:
        assert gif.n_frames == 7
    with Image.open(tmp_path / "thin.gif") as gif:
        firsts = []
        for frame in range(gif.n_frames):
            gif.seek(frame)
            firsts.append(np.asarray(gif.convert("L"))[0, 0])
    assert firsts == [0, 90, 180]


START_UP = [  # what TensorFlow 2.21 writes while it starts, and two lines that must show
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n",
    "I0000 00:00:1795307851.899059    2322 port.cc:153] oneDNN custom operations are on.\n",
    "I0000 00:00:1795307851.899295    2322 cudart_stub.cc:31] Could not find cuda drivers on "
    "your machine, GPU will not be used.\n",
    "E0000 00:00:1795310039.108086   22038 cuda_platform.cc:52] failed call to cuInit: INTERNAL\n",
    "W0000 00:00:1795310039.108086   22038 some.cc:1] a warning the user must see\n",
    "/site-packages/keras/src/x.py:1: UserWarning: so must they see this\n",
]


# TensorFlow 2.21's graph optimizer on the DCGAN's step (known harmless: common/quiet.py)
REMAPPER = ("E0000 00:00:1796122616.275754    3892 meta_optimizer.cc:967] remapper failed: "
            "INVALID_ARGUMENT: Mutation::Apply error: fanout 'StatefulPartitionedCall/"
            "gradient_tape/discriminator_1/body_1/leaky_re_lu_180_1/LeakyRelu/LeakyReluGrad' "
            "exist for missing node 'StatefulPartitionedCall/discriminator_1/body_1/"
            "conv2d_142_1/BiasAdd'.\n")
# the same in fp16, whose casts give the gradient's node a suffix
REMAPPER_FP16 = ("E0000 00:00:1796173854.423429   16898 meta_optimizer.cc:967] remapper failed: "
                 "INVALID_ARGUMENT: Mutation::Apply error: fanout 'while/body/_73/while/"
                 "StatefulPartitionedCall/gradient_tape/discriminator_3/leaky_re_lu_4_1/LeakyRelu/"
                 "LeakyReluGrad_1' exist for missing node 'while/body/_73/while/"
                 "StatefulPartitionedCall/discriminator_3/conv2d_1_2/BiasAdd'.\n")


def test_quiet_keeps_warnings_and_errors():
    from common import quiet

    other_fusion = REMAPPER.replace("LeakyReluGrad", "ReluGrad")  # not the known one
    kept = quiet.kept(START_UP + [REMAPPER, REMAPPER_FP16, other_fusion])
    assert [line.split()[0] for line in kept] == ["W0000", "/site-packages/keras/src/x.py:1:",
                                                  "E0000"]
    assert kept[-1] == other_fusion
    with_driver = [line for line in START_UP if "cudart_stub" not in line]
    assert any("cuInit" in line for line in quiet.kept(with_driver))  # a real CUDA error


def test_the_filter_passes_lines_on_as_they_come():
    """Through a pipe, as a command's stderr reaches it, each read shown
    before the next comes: whole lines at once, the dropped ones dropped, a
    part of a line at once unless it may be the start of a line of
    TensorFlow's logging, a character split across two reads intact."""
    import io
    import os
    import threading
    import time

    from common import quiet

    steps = [  # (what is written, all that must have come out once it is)
        ("Traceback (most recent call last):\n  File", "Traceback (most recent call last):\n  File"),
        (' "x.py"\n' + REMAPPER[:40], ' "x.py"\n'),
        (REMAPPER[40:] + "W0000 00:00:1.0 1 a.cc:1] warn", ""),
        ("ing\n", "W0000 00:00:1.0 1 a.cc:1] warning\n"),
        ("na\u00efve".encode()[:3], "na"),  # the first of the two bytes of the i
        ("na\u00efve".encode()[3:], "\u00efve"),
    ]
    read, write = os.pipe()
    sink = io.BytesIO()
    copying = threading.Thread(target=quiet.copy_filtered, args=(read, sink), daemon=True)
    copying.start()
    expected = ""
    for written, shown in steps:
        os.write(write, written if isinstance(written, bytes) else written.encode())
        expected += shown
        deadline = time.monotonic() + 10
        while sink.getvalue().decode(errors="ignore") != expected and time.monotonic() < deadline:
            time.sleep(0.01)
        assert sink.getvalue().decode(errors="ignore") == expected
    os.close(write)
    copying.join()
    os.close(read)


@pytest.mark.parametrize("script, options", [
    ("gan_keras/train.py", ["--model", "dcgan", "--metrics-every", 0, "--batch-size", 64]),
    pytest.param("gan_keras/train.py", ["--model", "infogan", "--metrics-every", 0,
                                        "--batch-size", 64], marks=pytest.mark.slow),
    pytest.param("bench/ref_dcgan.py", [], marks=pytest.mark.slow)],
    ids=["dcgan", "infogan", "tutorial_dcgan"])
def test_a_run_prints_none_of_tensorflow_s_lines_that_say_nothing(script, options,
                                                                  synthetic_mnist, tmp_path):
    """A DCGAN and an InfoGAN run, whose steps make TensorFlow print the
    remapper's line, show no informational line and no E0000 line; nor
    does the tutorial's DCGAN loop, as parity and bench run it. Run as a
    user runs it (its module is then __main__), a train.py names itself in
    config.json's command, which the run's page shows."""
    out = ["--out", tmp_path / "run"] if script.endswith("train.py") else []
    quiet = run_script(script, "--data-dir", synthetic_mnist, "--epochs", 1, *out, *options,
                       "--seed", 5, env={"TF_CPP_MIN_LOG_LEVEL": None})
    assert quiet.returncode == 0, quiet.stderr
    assert "I0000" not in quiet.stderr and "absl::InitializeLog" not in quiet.stderr
    assert "E0000" not in quiet.stderr, quiet.stderr
    if out:
        command = json.loads((tmp_path / "run" / "config.json").read_text())["command"].split()
        assert command[:2] == ["python", script]
        assert {"--seed", "5", "--out", str(tmp_path / "run")} <= set(command)


FAILING = """import sys
from common import quiet
tf = quiet.start_tensorflow()
tf.print("E1201 12:00:00.000000 1 op.cc:1] an error from C++", output_stream=sys.stderr)
tf.zeros([2]) + tf.zeros([3])
"""


@pytest.mark.parametrize("level", [None, pytest.param("0", marks=pytest.mark.slow)],
                         ids=["default", "chosen"])
def test_a_real_error_still_shows_and_a_chosen_log_level_shows_everything(level, tmp_path):
    """An error line from TensorFlow's C++ and a Python exception from it
    reach stderr through the filter; a user who sets TF_CPP_MIN_LOG_LEVEL
    sees every line, informational ones too."""
    failing = tmp_path / "failing.py"
    failing.write_text(FAILING)
    failed = run_script(failing, env={"TF_CPP_MIN_LOG_LEVEL": level})
    assert failed.returncode == 1
    assert "E1201 12:00:00.000000 1 op.cc:1] an error from C++\n" in failed.stderr
    assert "InvalidArgumentError" in failed.stderr and "Incompatible shapes" in failed.stderr
    assert ("I0000" in failed.stderr) == (level == "0")  # only by their choice
