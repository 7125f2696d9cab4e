"""python -m common.bench: our loop beside the project's own tutorial loop,
on the same images, in fresh processes."""
import re

import pytest
from conftest import run_script

from common import bench


def test_the_suite_turns_each_option_of_the_fast_path_the_other_way():
    cpu = {"precision": "bf16", "jit": False, "steps_per_call": 25, "data_on_device": True}
    assert bench.toggles(cpu) == ["--precision fp32", "--no-data-on-device",
                                  "--steps-per-call 1", "--jit"]
    gpu = {"precision": "fp32", "jit": True, "steps_per_call": 1, "data_on_device": False}
    assert bench.toggles(gpu) == ["--precision bf16", "--data-on-device",
                                  "--steps-per-call 25", "--no-jit"]


@pytest.mark.slow
def test_bench_runs_the_tutorial_loop_beside_ours(synthetic_mnist):
    result = run_script("-m", "common.bench", "--model", "conv_vae", "--images", 256,
                        "--epochs", 2, "--data-dir", synthetic_mnist,
                        "--variant", "--steps-per-call 1")
    assert result.returncode == 0, result.stderr[-2000:]
    rows = {line.split("  ")[0]: line for line in result.stdout.splitlines()
            if line.startswith(("reference ", "ours"))}
    assert set(rows) == {"reference", "ours --steps-per-call 1"}
    assert " 1.00x " in rows["reference"]  # the ratio is to the reference
    assert re.search(r" \d+\.\d\dx ", rows["ours --steps-per-call 1"])
    assert str(bench.REFERENCES["conv_vae"]) in result.stdout  # the project's own loop
