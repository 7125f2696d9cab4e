"""Several runs of one experiment: the seeds command, N at once on this
machine, and on a Ray cluster (its local mode), where a killed run is
started again and resumes from its checkpoint."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import command, environment, history

from common.evaluation import spread
from common.experiments import seeds, sweep


@pytest.mark.slow
def test_seeds_trains_one_configuration_per_seed_and_resumes(synthetic_mnist, tmp_path, capfd):
    out = tmp_path / "seeds"
    argv = ["--model", "mlp_vae", "--seeds", "3", "4", "--out", str(out), "--data-dir",
            str(synthetic_mnist), "--epochs", "2", "--metrics-every", "1",
            "--metrics-samples", "64", "--classifier-dir", str(tmp_path / "classifier")]
    assert seeds.main(argv) == 0
    for seed_ in (3, 4):
        config = (out / f"seed_{seed_}" / "config.json").read_text()
        assert f'"seed": {seed_}' in config
        assert [row["epoch"] for row in history(out / f"seed_{seed_}")] == ["1", "2"]
    summary = (out / "seeds.md").read_text().splitlines()
    fds = [float((out / f"seed_{s}" / "metrics.csv").read_text().splitlines()[-1].split(",")[3])
           for s in (3, 4)]
    assert f"| mean ± sd | | {spread.Spread(fds).text()} |" in summary[-1]
    capfd.readouterr()
    assert seeds.main([*argv[:-4], "--epochs", "3", *argv[-4:]]) == 0  # one more epoch each
    printed = capfd.readouterr().out
    assert printed.count("Resuming") == 2 and "Time for epoch 1 " not in printed

    # compare takes the sweep's directory for its runs: one group of two seeds
    from common.evaluation import compare

    assert compare.main([str(out), "--out", str(tmp_path / "comparison"), "--iw-samples", "2",
                         "--iw-images", "4", "--classifier-dir",
                         str(tmp_path / "classifier")]) == 0
    report = (tmp_path / "comparison" / "report.md").read_text()
    grey = "mnist, grey levels in [0, 1], not binary: no likelihood"  # report 004's preset
    assert f"| seeds | mlp_vae | {grey} | 2 | 3 |" in report
    assert f"| seed_3 | seeds | 3 | {grey} |" in report
    assert f"| seed_4 | seeds | 4 | {grey} |" in report
    assert (tmp_path / "comparison" / "report.html").exists()


@pytest.mark.slow
def test_the_default_sweep_directory_is_named_after_the_run(synthetic_mnist, tmp_path):
    assert seeds.main(["--model", "mlp_gan", "--preset", "report001", "--seeds", "1",
                       "--data-dir", str(synthetic_mnist), "--epochs", "1",
                       "--metrics-every", "0"]) == 0
    assert (tmp_path / "outputs" / "seeds_mlp_gan_report001" / "seed_1" / "history.csv").exists()


def test_local_workers_divide_the_cpu_or_take_a_gpu_each(monkeypatch):
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    monkeypatch.setattr(sweep, "_gpus", lambda: [])
    assert sweep._slots(2) == [{"TF_NUM_INTRAOP_THREADS": "4", "TF_NUM_INTEROP_THREADS": "1",
                                "OMP_NUM_THREADS": "4"}] * 2
    monkeypatch.setattr(sweep, "_gpus", lambda: ["0", "1"])
    assert sweep._slots(2) == [{"CUDA_VISIBLE_DEVICES": "0"}, {"CUDA_VISIBLE_DEVICES": "1"}]
    assert [slot["CUDA_VISIBLE_DEVICES"] for slot in sweep._slots(3)] == ["0", "1", "0"]
    assert all(slot["TF_FORCE_GPU_ALLOW_GROWTH"] == "true" for slot in sweep._slots(3))


MIG_LISTING = """GPU 0: NVIDIA A100-SXM4-40GB (UUID: GPU-5d5ba0d6-aaaa)
  MIG 3g.20gb     Device  0: (UUID: MIG-c6d4f1ef-bbbb)
  MIG 3g.20gb     Device  1: (UUID: MIG-cd2c0b9f-cccc)
GPU 1: NVIDIA A100-SXM4-40GB (UUID: GPU-7e1ca0d6-dddd)
"""


def test_mig_instances_are_devices_of_their_own_named_by_uuid():
    """nvidia-smi -L lists a GPU split into MIG instances, then each
    instance: the instances are the devices (by UUID, the only name
    CUDA_VISIBLE_DEVICES takes for one), not the GPU that holds them."""
    assert sweep.devices_listed(MIG_LISTING) == ["MIG-c6d4f1ef-bbbb", "MIG-cd2c0b9f-cccc", "1"]
    assert sweep.devices_listed("GPU 0: Tesla T4 (UUID: GPU-1)\nGPU 1: Tesla T4 (UUID: GPU-2)\n"
                                ) == ["0", "1"]


def test_one_worker_gives_each_run_one_gpu_unless_it_asks_for_several(monkeypatch):
    """--workers 1 runs one after the other, each on one GPU as with more
    workers (the same experiment trains the same way whatever --workers);
    a run whose command asks for --strategy mirrored sees every GPU."""
    monkeypatch.setattr(sweep, "_gpus", lambda: ["0", "1"])
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    show = ("import os, sys; sys.exit(int(os.environ.get('CUDA_VISIBLE_DEVICES', '9')))")
    runs = [sweep.Run("one", (sys.executable, "-c", show)),
            sweep.Run("all", (sys.executable, "-c", show, "--strategy", "mirrored"))]
    assert sweep.run_all(runs, workers=1) == {"one": 0, "all": 9}


def test_workers_sharing_one_gpu_run_at_once_each_growing_its_memory(monkeypatch, capsys):
    """--workers 4 on one GPU: four processes at once, each seeing GPU 0
    with memory growth on (each records its environment and waits until
    all four have started, which only four at once can do)."""
    monkeypatch.setattr(sweep, "_gpus", lambda: ["0"])
    started = Path.cwd() / "started"
    started.mkdir()
    script = (f"import os, pathlib, sys, time; d = pathlib.Path({str(started)!r}); "
              "(d / sys.argv[1]).write_text(os.environ['CUDA_VISIBLE_DEVICES'] + ' ' "
              "+ os.environ['TF_FORCE_GPU_ALLOW_GROWTH']); end = time.monotonic() + 60; "
              "[time.sleep(0.05) for _ in iter(lambda: len(list(d.iterdir())) < 4 "
              "and time.monotonic() < end, False)]; sys.exit(len(list(d.iterdir())) < 4)")
    runs = [sweep.Run(f"w{i}", (sys.executable, "-c", script, f"w{i}")) for i in range(4)]
    assert sweep.run_all(runs, workers=4) == {f"w{i}": 0 for i in range(4)}
    assert {p.read_text() for p in started.iterdir()} == {"0 true"}


def _pid_training(directory):
    """The process training into `directory`, from /proc, or None."""
    for entry in Path("/proc").iterdir():
        try:
            arguments = (entry / "cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            continue
        if str(directory).encode() in arguments and any(a.endswith(b"train.py")
                                                         for a in arguments):
            return int(entry.name)
    return None


@pytest.mark.slow
def test_a_run_killed_on_a_ray_cluster_resumes_from_its_checkpoint(tmp_path):
    """Two runs at once on Ray's local mode, one task each; one run's
    process is killed after its first epoch: Ray starts the task again and
    the run resumes where its checkpoint left it."""
    pytest.importorskip("ray")
    from conftest import write_mnist

    data = write_mnist(tmp_path / "data", n_train=4096)
    out = tmp_path / "seeds"
    sweep_process = subprocess.Popen(
        command("-m", "common.experiments", "seeds", "--model", "mlp_vae", "--seeds", "1", "2",
                "--cluster", "local", "--out", out, "--data-dir", data, "--epochs", "6",
                "--metrics-every", "0"),
        env=environment({"RAY_AUTH_MODE": "disabled"}), stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True)
    victim = out / "seed_1"
    deadline = time.monotonic() + 300
    while not (victim / "checkpoints" / "checkpoint").exists():  # epoch 1 is saved
        assert sweep_process.poll() is None and time.monotonic() < deadline, "no checkpoint"
        time.sleep(0.05)
    pid = _pid_training(victim)
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    output, _ = sweep_process.communicate(timeout=600)
    assert sweep_process.returncode == 0, output[-3000:]
    assert "Resuming" in output and "exit status -9" in output, output
    for seed_ in (1, 2):
        assert [row["epoch"] for row in history(out / f"seed_{seed_}")] == [
            str(epoch) for epoch in range(1, 7)]


@pytest.mark.slow
def test_parity_scores_the_tutorial_loop_and_ours_the_same_way(synthetic_mnist, tmp_path):
    """The reference (the tutorial's loop) exports its samples every epoch;
    they are scored by the same classifier as ours; the report's numbers
    are the runs' own."""
    from bench import parity
    from common.rundir import RunDir

    out = tmp_path / "parity"
    assert parity.main(["--model", "dcgan", "--epochs", "2", "--seeds", "1", "2",
                        "--precisions", "fp32", "--samples", "64", "--data-dir",
                        str(synthetic_mnist), "--out", str(out)]) == 0
    for variant in ("reference", "ours_fp32"):
        for seed_ in (1, 2):
            run = RunDir(out / variant / f"seed_{seed_}")
            assert [row["epoch"] for row in run.read_table("metrics")] == [1, 2]
            assert [row["epoch"] for row in run.read_table("history")] == [1, 2]
    report = (out / "parity.md").read_text()
    fd = {variant: [RunDir(out / variant / f"seed_{s}").read_table("metrics")[-1]["fd"]
                    for s in (1, 2)] for variant in ("reference", "ours_fp32")}
    for variant, values in fd.items():
        row = next(line for line in report.splitlines() if line.startswith(f"| {variant} |"))
        assert row.split(" | ")[2] == spread.Spread(values).text()  # after the epoch
        for seed_, value in zip((1, 2), values):
            assert f"| {variant} | {seed_} | {value:.4g} |" in report
    assert spread.RULE in report and "by Frechet distance" in report
    for figure in ("curves.png", "pictures.png"):
        assert (out / figure).stat().st_size > 1000
    # the reference's seeds are its own: two seeds, two sets of samples
    with np.load(out / "reference" / "seed_1" / "samples_at_epoch_0002.npz") as one, \
            np.load(out / "reference" / "seed_2" / "samples_at_epoch_0002.npz") as two:
        assert one["images"].shape == (64, 28, 28) and one["images"].dtype == np.uint8
        assert not np.array_equal(one["images"], two["images"])
