"""Scaling study: end to end on tiny settings, documented tables, FLOPs, resume."""

import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from keras_effnet import study
from keras_effnet.study import measure, memory, plots, runner, specs

import helpers

REPO = helpers.REPO
MODES = ("fp32", "int8")
TINY = dict(
    models=("b0", "lite0"),
    resolution=32,
    epochs=1,
    budget_seconds=0.5,
    batch_size=32,
    bn_images=64,
    tflite_modes=MODES,
    latency_runs=10,
    timing_iterations=1,
    timing_repeats=2,
    timing_warmup=1,
    interleaved_repeats=2,
)


@pytest.fixture(scope="module")
def tiny_study(tmp_path_factory):
    """The real study (one worker process per cell) on two small models at 32px."""
    config = study.StudyConfig(output_dir=str(tmp_path_factory.mktemp("study")), **TINY)
    return config, study.run_scaling_study(config)


def _store(config):
    with open(study.output_paths(config.output_dir)["store"]) as f:
        return json.load(f)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_study_writes_documented_tables(tiny_study):
    config, result = tiny_study
    assert result["failed"] == [] and len(result["ran"]) == 2
    names = [name for name, _ in study.columns(MODES)]
    with open(result["csv"]) as f:
        table = list(csv.reader(f))
    assert table[0] == names
    assert [row[1] for row in table[1:]] == ["b0", "lite0"]
    with open(result["json"]) as f:
        doc = json.load(f)
    assert [c["name"] for c in doc["columns"]] == names
    assert all(c["description"] for c in doc["columns"])
    assert doc["metadata"]["config"]["models"] == ["b0", "lite0"]
    for row in doc["rows"]:
        assert row["resolution"] == 32 and row["seed"] == 0 and row["dataset"] == "digits"
        for column in (
            "params",
            "flops",
            "train_images_per_s",
            "keras_latency_ms",
            "train_peak_delta_mib",
            "rss_base_mib",
            "first_step_seconds",
            "tflite_fp32_latency_ms",
            "tflite_int8_latency_ms",
            "tflite_int8_mib",
            "graph_layers",
            "tflite_fp32_ops",
            "tflite_int8_ops",
        ):
            assert row[column] > 0, column
        assert row["train_steps"] >= 2
        assert row["memory_method"] == "vmhwm-reset"
        assert row["timing_method"] == "interleaved (2 models, min of 2 rounds)"
        for column in ("fit_images_per_s", "solo_keras_latency_ms", "solo_tflite_int8_latency_ms"):
            assert row[column] > 0, column
        # The int8 guard may keep layers of these barely trained models in float.
        assert isinstance(row["tflite_int8_guard_met"], bool)
        if row["tflite_int8_float_layers"] == 0:
            assert row["tflite_int8_mib"] < row["tflite_fp32_mib"] / 2
        else:
            # The fallback may keep every tensor of a barely trained model in
            # float: then the file is the float one plus the quantize and
            # dequantize ops at its edges (measured: 600 bytes over 12.9 MiB).
            assert row["tflite_int8_mib"] < row["tflite_fp32_mib"] * 1.01
        assert row["graph_layers"] > row["tflite_fp32_ops"] / 2
        assert row["train_loss"] > 0
        for column in (
            "accuracy",
            "accuracy_bn_ema",
            "tflite_fp32_accuracy",
            "tflite_int8_accuracy",
            "train_accuracy",
        ):
            assert 0.0 <= row[column] <= 1.0, column
        # The fp32 .tflite computes the same function as the Keras model.
        assert abs(row["tflite_fp32_accuracy"] - row["accuracy"]) <= 0.02


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_study_figures_are_pngs(tiny_study):
    _, result = tiny_study
    import matplotlib.image

    assert set(result["figures"]) == set(plots.STUDY_FIGURES)
    for path in result["figures"].values():
        with open(path, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
        height, width = matplotlib.image.imread(path).shape[:2]
        assert height > 200 and width > 200


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_study_flops_agree_with_model_profile(tiny_study):
    _, result = tiny_study
    for row in result["rows"]:
        # Independent of the analytic profile the row came from: Keras' own
        # parameter count and TensorFlow's profiler on the same model.
        model = specs.build(
            specs.parse_model_name(row["model"]),
            row["resolution"],
            row["classes"],
            stem_strides=row["stem_strides"],
        )
        assert row["params"] == model.count_params()
        assert row["macs"] * 2 <= row["flops"] <= row["macs"] * 2.2
        reference = helpers.profiler_flops(model)
        assert abs(row["flops"] - reference) / reference < 0.03, (row["model"], reference)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_rerun_skips_finished_cells_and_retries_the_rest(tiny_study, tmp_path):
    config, result = tiny_study
    before = _store(config)
    calls = []

    def counting(cell_id, cell, on_phase=None):
        calls.append(cell_id)
        return dict(before[cell_id], row=dict(before[cell_id]["row"], finished_at="recomputed"))

    again = study.run_scaling_study(config, cell_runner=counting)
    assert calls == [] and again["skipped"] == result["ran"]
    assert sum(key.startswith("interleaved-timing-") for key in before) == 1
    assert [r["finished_at"] for r in again["rows"]] == [r["finished_at"] for r in result["rows"]]

    # Interrupted run: lite0 never finished (missing), then failed (error record).
    b0_id, lite0_id = result["ran"]
    partial = dict(before)
    del partial[lite0_id]
    other = study.StudyConfig(output_dir=str(tmp_path), **TINY)
    with open(study.output_paths(other.output_dir)["store"], "w") as f:
        json.dump(partial, f)
    resumed = study.run_scaling_study(other, cell_runner=counting)
    assert calls == [lite0_id] and resumed["skipped"] == [b0_id]
    assert [r["finished_at"] for r in resumed["rows"]] == [
        result["rows"][0]["finished_at"],
        "recomputed",
    ]

    store = study.ResultStore(study.output_paths(other.output_dir)["store"])
    store.put(lite0_id, {"status": "error", "error": "killed", "cell": before[lite0_id]["cell"]})
    calls.clear()
    study.run_scaling_study(other, cell_runner=counting)
    assert calls == [lite0_id]


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_script_resumes_from_the_store(tiny_study):
    config, result = tiny_study
    before = _store(config)
    flags = [
        f"--models={','.join(TINY['models'])}",
        "--resolution=32",
        "--epochs=1",
        "--budget_seconds=0.5",
        "--batch_size=32",
        "--bn_images=64",
        f"--tflite_modes={','.join(MODES)}",
        "--latency_runs=10",
        "--timing_iterations=1",
        "--timing_repeats=2",
        "--timing_warmup=1",
        "--interleaved_repeats=2",
        f"--output_dir={config.output_dir}",
    ]
    proc = subprocess.run(
        [sys.executable, os.path.join(REPO, "scripts", "scaling_study.py"), *flags],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "0 ran, 2 skipped, 0 failed" in proc.stdout
    assert "lite0" in proc.stdout and "b0" in proc.stdout
    assert _store(config) == before


def test_cell_id_covers_every_setting():
    config = study.StudyConfig(**TINY)
    ids = [key for key, _ in config.jobs()]
    assert ids == [key for key, _ in study.StudyConfig(**TINY).jobs()]
    assert ids[0].startswith("b0@32px-") and ids[1].startswith("lite0@32px-")
    for change in (
        {"epochs": 2},
        {"seed": 1},
        {"batch_size": 16},
        {"tflite_modes": ("fp32",)},
        {"bn_images": 0},
        {"jit_compile": True},
        {"base_lr": 0.032},
    ):
        changed = study.StudyConfig(**{**TINY, **change})
        assert [key for key, _ in changed.jobs()][0] != ids[0], change


def test_seeds_measure_every_model_before_the_next_seed():
    one = study.StudyConfig(**TINY)
    three = study.StudyConfig(**TINY, seeds=3)
    jobs = three.jobs()
    assert [(c["model"]["name"], c["seed"]) for _, c in jobs] == [
        (m, s) for s in range(3) for m in ("b0", "lite0")
    ]
    # The first seed's cells are the one-seed study's: adding seeds resumes it.
    assert [k for k, _ in jobs[:2]] == [k for k, _ in one.jobs()]
    assert len({k for k, _ in jobs}) == 6
    with pytest.raises(ValueError, match="seeds=0"):
        study.StudyConfig(**TINY, seeds=0)


def test_cells_train_with_the_recipe_keras_effnet_train_resolves():
    from keras_effnet import data
    from keras_effnet.training import recipe

    info = data.dataset_info("digits")
    config = study.StudyConfig(**{**TINY, "epochs": None, "resolution": 64})
    _, cell = config.jobs()[1]
    plan = measure.run_plan(cell, info, cell["model"])
    assert plan.config.model.name == "lite0" and plan.config.data.image_size == 64
    assert plan.config.optimizer.recipe == "scratch" and plan.config.optimizer.name == "adamw"
    assert plan.config.run.epochs == recipe.auto_epochs(plan.steps_per_epoch)
    assert plan.config.data.augment == "none" and plan.config.model.stem_strides == 2
    assert plan.stages[-1].image_size == 64 and len(plan.stages) == 1

    paper = study.StudyConfig(**{**TINY, "recipe": "paper"})
    _, cell = paper.jobs()[0]
    plan = measure.run_plan(cell, info, cell["model"])
    assert plan.config.optimizer.name == "rmsprop" and plan.config.run.epochs == 1
    assert plan.config.model.stem_strides == 1  # 32 px, as `keras-effnet train` picks.
    # References plan as B0: the recipe does not depend on the architecture.
    reference = study.StudyConfig(**{**TINY, "models": ("mobilenetv3small",)})
    _, cell = reference.jobs()[0]
    assert measure.run_plan(cell, info, cell["model"]).config.model.name == "b0"


def test_aggregate_gives_mean_and_half_range_per_model():
    rows = [
        {
            "model": "b0",
            "flops": 10,
            "accuracy": 0.8,
            "tflite_int8_accuracy": 0.7,
            "tflite_int8_float_layers": 0,
            "fit_seconds": 100.0,
        },
        {"model": "lite0", "flops": 5, "accuracy": 0.5, "tflite_int8_float_layers": 3},
        {
            "model": "b0",
            "flops": 10,
            "accuracy": 0.9,
            "tflite_int8_accuracy": 0.8,
            "tflite_int8_float_layers": 2,
            "fit_seconds": 120.0,
        },
    ]
    b0, lite0 = study.results.aggregate(rows)
    assert (b0["model"], b0["seeds"], b0["flops"]) == ("b0", 2, 10)
    assert b0["accuracy"] == pytest.approx(0.85) and b0["accuracy_spread"] == pytest.approx(0.05)
    assert b0["tflite_int8_accuracy_spread"] == pytest.approx(0.05)
    assert b0["fit_seconds"] == 110.0 and b0["tflite_int8_guard_needed"] == 1
    table = study.results.summary_markdown(
        [dict(r, resolution=64, params=1e6) for r in (b0, lite0)], ("int8",)
    )
    assert "| b0 | 64 | 1.00 | 0 | - | 110 ± 10 | - | - | - | 85.0 ± 5.0 | 75.0 ± 5.0 |" in table
    assert table.splitlines()[-1].endswith("| 3 float layers (1/1 seeds) |")
    assert (lite0["seeds"], lite0["accuracy_spread"], lite0["tflite_int8_guard_needed"]) == (
        1,
        0.0,
        1,
    )


def test_pareto_front_keeps_the_models_worth_their_cost():
    # (cost, accuracy): the second is beaten by the first (cheaper and better).
    points = [(1.0, 0.80), (2.0, 0.75), (3.0, 0.90), (3.0, 0.85), (5.0, 0.95), (4.0, 0.90)]
    assert plots.pareto_front(points) == [0, 2, 4]
    assert plots.pareto_front([]) == []


def test_nomeasure_reports_the_finished_cells_only(tmp_path):
    config = study.StudyConfig(**TINY, output_dir=str(tmp_path), measure=False, plots=False)
    (b0_id, b0_cell), (lite0_id, _) = config.jobs()
    row = {"cell_id": b0_id, "model": "b0", "family": "efficientnet", "flops": 1, "seed": 0}
    row.update(resolution=32, params=10)
    study.ResultStore(study.output_paths(str(tmp_path))["store"]).put(
        b0_id, {"status": "ok", "row": row, "cell": b0_cell}
    )

    def refuse(*args, **kwargs):
        raise AssertionError("--nomeasure measured a cell")

    result = study.run_scaling_study(config, cell_runner=refuse)
    assert result["missing"] == [lite0_id] and result["skipped"] == [b0_id]
    with open(study.output_paths(str(tmp_path))["summary"] + ".json") as f:
        summary = json.load(f)
    assert [r["model"] for r in summary["rows"]] == ["b0"] and summary["rows"][0]["seeds"] == 1
    assert summary["metadata"]["missing"] == [lite0_id]


def test_native_and_compound_resolutions():
    config = study.StudyConfig(
        models=("b0", "b2", "resnet50"),
        phis=(0, 1),
        resolution=0,
        resolution_scale=0.25,
        base_resolution=128,
        tflite_modes=(),
    )
    cells = [cell for _, cell in config.jobs()]
    assert [c["resolution"] for c in cells] == [56, 65, 56, 32, 37]
    assert cells[4]["model"]["alpha"] == 1.2 and cells[4]["model"]["label"] == "phi1"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"models": ("b9",)}, "models entry 'b9'"),
        ({"resolution": 16}, "resolution=16"),
        ({"tflite_modes": ("fp8",)}, "tflite_modes"),
        ({"epochs": 0, "budget_seconds": 0}, "budget"),
        ({"models": ("b0", "B0")}, "twice"),
        ({"models": (), "phis": (-1,)}, "phi"),
    ],
)
def test_config_errors_name_the_argument(kwargs, message):
    with pytest.raises(ValueError, match=message):
        study.StudyConfig(**{**TINY, **kwargs})


def test_peak_memory_sees_a_phase_allocation():
    with memory.PeakMemory() as mem:
        block = np.ones(200 * 2**20, dtype=np.uint8)
        del block
    assert mem.method == "vmhwm-reset"
    assert mem.delta_mib >= 150


def test_power_law_exponent():
    flops = [1e6, 2e6, 4e6, 8e6]
    assert plots.power_law_exponent(flops, [3 * f**0.5 for f in flops]) == pytest.approx(0.5)
    assert plots.power_law_exponent(flops[:2], [1.0, 2.0]) is None


def test_subprocess_runner_reports_worker_errors(tmp_path):
    config = study.StudyConfig(**TINY)
    key, cell = config.jobs()[0]
    broken = dict(cell, dataset=str(tmp_path / "missing"))
    record = runner.subprocess_runner(str(tmp_path / "logs"), timeout=300)(key, broken)
    assert record["status"] == "error" and "Dataset directory not found" in record["error"]
    assert os.path.exists(tmp_path / "logs" / f"{key}.log")


def test_interleaved_figures_replace_per_cell_ones_and_keep_them_as_solo(tmp_path):
    from keras_effnet.study import timing

    config = study.StudyConfig(**TINY)
    jobs = config.jobs()
    rows = [
        {
            "cell_id": key,
            "classes": 10,
            "keras_latency_ms": 5.0,
            "train_images_per_s": 10.0,
            "tflite_fp32_latency_ms": 1.0,
            "tflite_fp32_file": f"{key}.fp32.tflite",
        }
        for key, _ in jobs
    ]
    somewhere, elsewhere = tmp_path / "somewhere", tmp_path / "elsewhere"
    for folder in (somewhere, elsewhere):
        folder.mkdir()
        for row in rows:
            (folder / row["tflite_fp32_file"]).write_bytes(b"tflite")
    key, job = timing.make_job(jobs, rows, config, str(somewhere))
    assert key == timing.make_job(jobs, rows, config, str(elsewhere))[0]
    assert key != timing.make_job(jobs[:1], rows[:1], config, str(somewhere))[0]
    # A file gone since its cell ran (an earlier session's): timed without it.
    (elsewhere / rows[1]["tflite_fp32_file"]).unlink()
    partial = timing.make_job(jobs, rows, config, str(elsewhere))[1]
    assert [m["tflite"] for m in partial["models"]] == [{"fp32": rows[0]["tflite_fp32_file"]}, {}]
    assert [m["tflite"] for m in job["models"]] == [{"fp32": r["tflite_fp32_file"]} for r in rows]
    record = {
        "status": "ok",
        "rounds": {
            rows[0]["cell_id"]: {
                "keras_latency_ms": [4.0, 3.0, 9.0],
                "train_ms_per_image": [100.0, 50.0, 80.0],
                "tflite_fp32_latency_ms": [0.5, 0.7, 0.6],
            }
        },
    }
    new = timing.apply(rows, record, "min")
    assert new[0]["keras_latency_ms"] == 3.0 and new[0]["solo_keras_latency_ms"] == 5.0
    assert new[0]["train_images_per_s"] == 20.0 and new[0]["train_ms_per_image"] == 50.0
    assert new[0]["tflite_fp32_latency_ms"] == 0.5 and new[0]["solo_tflite_fp32_latency_ms"] == 1.0
    assert new[0]["timing_method"] == "interleaved (1 models, min of 3 rounds)"
    median = timing.apply(rows, record, "median")[0]
    assert (median["keras_latency_ms"], median["train_images_per_s"]) == (4.0, 12.5)
    assert new[1] == rows[1] and timing.apply(rows, {"status": "error"}) == rows
    with pytest.raises(ValueError, match="timing_statistic"):
        timing.apply(rows, record, "mean")

    # Every seed of a model takes its model's interleaved figures.
    seeds = [dict(rows[0], cell_id="b0@32px-other", model="b0"), dict(rows[1], model="lite0")]
    spread = timing.apply(seeds, record, "min")
    assert spread[0]["keras_latency_ms"] == 3.0 and spread[0]["solo_keras_latency_ms"] == 5.0
    assert spread[0]["train_ms_per_image"] == 50.0 and spread[1] == seeds[1]


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_study_records_int8_fallback_and_keeps_a_miss(monkeypatch):
    # The study converts int8 through the export's accuracy guard: a file that
    # collapses (every image answered as class 0, what B0's int8 once did in the
    # study) is recorded with its fallback and the miss, not refused or hidden.
    import export_testlib as lib

    model = lib.loaded_model("lite0")
    calib = lib.arrays("train", 64)[0]
    test_x, test_y = lib.arrays("test", 100)
    search = lib.arrays("validation", 100)
    cell = {"tflite_modes": ["int8"], "threads": 2, "latency_runs": 2}
    row = measure._tflite(model, cell, calib, test_x, test_y, search=search)
    # The guard meets the target on this model, with or without float layers:
    # on 100 validation images one or two images decide whether it must keep
    # layers in float (the drop plus its standard error, docs/export.md "The int8 guard"),
    # and the trained fixture differs a little between CPUs.
    assert row["tflite_int8_guard_met"] is True
    assert row["tflite_int8_accuracy"] >= 0.8
    lib.collapse_int8(monkeypatch)
    row = measure._tflite(model, cell, calib, test_x, test_y, search=search)
    assert row["tflite_int8_guard_met"] is False
    # Every candidate scores the same here, so the best tried is the plain file.
    assert row["tflite_int8_float_layers"] == 0
    assert row["tflite_int8_plain_val_accuracy"] == pytest.approx(np.mean(search[1] == 0))
    assert "tflite_errors" not in row
