"""The GPU benchmark's CPU dry run (scripts/bench_gpu.py --tiny), before any GPU time is spent.

The dry run goes through every section at tiny sizes on the JAX backend, in
its own process (KERAS_BACKEND is read once), and must not import
TensorFlow: the GPU machine has none (docs/design.md "On a GPU"). It compiles about ten
XLA programs on the CPU (10-20 s each for a B0 training step on 2 cores),
hence slow.
"""

import json
import math
import os
import subprocess
import sys

import pytest

from keras_effnet.bench import gpu_results

import helpers

REPO = helpers.REPO

# Runs the script as `python scripts/bench_gpu.py ...` would, then reports
# whether anything imported TensorFlow.
_WRAPPER = r"""
import runpy, sys
sys.argv = ["bench_gpu.py"] + sys.argv[1:]
try:
    runpy.run_path("scripts/bench_gpu.py", run_name="__main__")
except SystemExit as exit:
    if exit.code not in (None, 0):
        raise
print("TENSORFLOW_IMPORTED", any(m.split(".")[0] == "tensorflow" for m in sys.modules))
"""


def _run(*args, timeout=900):
    env = dict(os.environ, KERAS_BACKEND="jax", CUDA_VISIBLE_DEVICES="")
    return subprocess.run(
        [sys.executable, "-c", _WRAPPER, *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu_dry") / "run"
    proc = _run(f"--output_dir={out}", "--tiny")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    with open(out / "results.json", encoding="utf8") as f:
        return out, json.load(f), proc.stdout


def _finite(value):
    return isinstance(value, (int, float)) and math.isfinite(value)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_dry_run_writes_every_section_without_tensorflow(dry_run):
    out, result, stdout = dry_run
    for name in ("results.json", "results.csv", "table.md"):
        assert (out / name).stat().st_size > 0
    assert "TENSORFLOW_IMPORTED False" in stdout
    assert result["events"] == []  # nothing skipped, nothing failed
    sections = ("correctness", "b0_vs_keras_applications", "timm_anchor", "family")
    assert set(result["section_seconds"]) == set(sections) | {"b0_small_batch"}
    assert {t["section"] for t in result["throughput"]} == set(sections[1:])
    assert {r["section"] for r in result["ratios"]} == set(sections[1:3]) | {"b0_small_batch"}
    assert result["environment"]["versions"]["keras"]
    for row in result["throughput"]:
        assert _finite(row["images_per_s"]) and row["images_per_s"] > 0, row
    assert all(_finite(r["ratio"]) for r in result["ratios"])
    assert all(_finite(m["value"]) for m in result["measurements"] if m["value"] is not None)
    assert "| b0_vs_keras_applications | train | mixed_bfloat16 |" in (out / "table.md").read_text()


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_dry_run_correctness_and_family(dry_run):
    _, result, _ = dry_run
    rows = result["correctness"]
    references = {(r["model"], r["reference"].split(".")[0]) for r in rows}
    assert references >= {
        ("efficientnetb0", "keras"),
        ("efficientnetv2-b0", "keras"),
        ("efficientnet_lite0", "same model on XLA:CPU"),
    }
    for row in rows:
        assert row["max_abs_output"] > 1e-2  # a meaningful comparison
        assert row["deterministic"]
        if row["precision"] == "highest":
            assert row["max_abs_diff"] < 1e-4, row
    family = result["family"]
    assert [f["model"] for f in family] == ["b0", "lite0", "lite1"]
    for row in family:
        assert row["params"] > 0 and row["flops"] > 0
        assert _finite(row["train_images_per_s"]) and _finite(row["inference_images_per_s"])
    exponents = {(e["scope"], e["metric"]): e["k"] for e in result["exponents"]}
    assert _finite(exponents[("GPU, all family models measured", "train")])
    assert _finite(exponents[("GPU, all family models measured", "inference")])
    cpu = [k for (scope, _), k in exponents.items() if scope.startswith("CPU")]
    assert cpu and all(_finite(k) for k in cpu)  # the CPU study's k beside the GPU's


def test_refuses_a_non_empty_output_dir(tmp_path):
    (tmp_path / "keep.txt").write_text("x")
    proc = _run(f"--output_dir={tmp_path}", "--tiny", timeout=300)
    assert proc.returncode != 0
    assert "not empty" in proc.stderr and "--overwrite" in proc.stderr
    assert os.listdir(tmp_path) == ["keep.txt"]


def test_power_law_exponent():
    flops = [1e8, 2e8, 4e8, 8e8]
    assert gpu_results.power_law_exponent(flops, [f**0.5 for f in flops]) == pytest.approx(0.5)
    assert gpu_results.power_law_exponent(flops[:2], [1.0, 2.0]) is None  # < 3 points
    assert gpu_results.power_law_exponent(flops, [1.0, None, 2.0, 0.0]) is None


def test_timed_rounds_interleave_and_median():
    calls = []
    steps = {"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}
    seconds = gpu_results.timed_rounds(steps, warmup=1, rounds=2, iterations=2)
    assert calls == ["a", "b"] + ["a", "a", "b", "b"] * 2
    assert len(seconds["a"]) == 2 and all(s >= 0 for s in seconds["a"])
    median, per_round = gpu_results.images_per_s(4, [1.0, 2.0, 4.0])
    assert median == 2.0 and per_round == (4.0, 2.0, 1.0)
