"""python bench/speed.py: our loop beside the project's own tutorial loop,
on the same images, in fresh processes."""
import re

import pytest
from conftest import run_script

from bench import speed


def test_the_suite_turns_each_option_of_the_fast_path_the_other_way():
    cpu = {"precision": "bf16", "jit": False, "steps_per_call": 25, "data_on_device": True}
    assert speed.toggles(cpu) == ["--precision fp32", "--no-data-on-device",
                                  "--steps-per-call 1", "--jit"]
    gpu = {"precision": "fp32", "jit": True, "steps_per_call": 1, "data_on_device": False}
    assert speed.toggles(gpu) == ["--precision bf16", "--data-on-device",
                                  "--steps-per-call 25", "--no-jit"]


@pytest.mark.slow
def test_bench_runs_the_tutorial_loop_beside_ours(synthetic_mnist):
    result = run_script("bench/speed.py", "--model", "conv_vae", "--images", 256,
                        "--epochs", 2, "--data-dir", synthetic_mnist,
                        "--variant", "--steps-per-call 1")
    assert result.returncode == 0, result.stderr[-2000:]
    rows = {line.split("  ")[0]: line for line in result.stdout.splitlines()
            if line.startswith(("reference ", "ours"))}
    assert set(rows) == {"reference", "ours --steps-per-call 1"}
    assert " 1.00x " in rows["reference"]  # the ratio is to the reference
    assert re.search(r" \d+\.\d\dx ", rows["ours --steps-per-call 1"])
    # ours on the reference's one device (a multi-GPU host would mirror it otherwise)
    assert re.search(r"== ours --steps-per-call 1: .* --strategy none .*--steps-per-call 1\n",
                     result.stdout)
    assert str(speed.REFERENCES["conv_vae"]) in result.stdout  # the project's own loop


@pytest.mark.slow
def test_the_gpu_check_prints_its_table_on_the_cpu_too(synthetic_mnist):
    """bench/gpu_check.py --quick: each part's rows, every short run
    exiting 0, the speed rows beside the tutorial's loop, and a resume that
    is exact on the CPU with and without --deterministic."""
    result = run_script("bench/gpu_check.py", "--quick", "--data-dir", synthetic_mnist)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [line.split(" | ") for line in result.stdout.splitlines() if line.startswith("| ")]
    parts = {}
    for row in rows[1:]:  # after the header
        parts.setdefault(row[0].strip("| "), []).append(row)
    assert [row[1].strip() for row in parts["1"]] == [
        "conv_vae", "conv_vae --jit", "conv_vae --precision bf16", "conv_vae --precision fp16",
        "conv_vae --strategy mirrored"]
    assert all(row[2].startswith("exit 0: Time for epoch 1 is ") for row in parts["1"])
    assert [row[1].split()[1:] for row in parts["2"][:4]] == [
        ["reference"], *[["ours", "--precision", p, "--no-jit", "--steps-per-call", "25"]
                         for p in ("fp32", "bf16", "fp16")]]
    assert len(parts["2"]) == 6 and all(re.search(r"\d\.\d\dx the tutorial", row[2])
                                        for row in parts["2"])
    assert [row[2].strip(" |") for row in parts["3"]] == ["bit for bit", "bit for bit"]
