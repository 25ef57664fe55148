"""export_tflite end to end: files, report, safety, census, debugger, CLI."""

import json
import os
import re
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
import test_guard

from keras_effnet import export
from keras_effnet.export import verification

import export_testlib as lib
import helpers

pytestmark = pytest.mark.timeout(900)

REPO = helpers.REPO
LABELS = [f"digit_{i}" for i in range(10)]


def _splits():
    return {
        "train": lib.arrays("train", 200),
        "validation": lib.arrays("validation"),
        "test": lib.arrays("test"),
    }


def test_int8_pipeline_writes_model_and_report(tmp_path):
    out = tmp_path / "lite0_int8.tflite"
    report = export.export_tflite(
        lib.trained_model("lite0"),
        "int8",
        str(out),
        export.ExportOptions(dataset="digits", labels=LABELS, latency_runs=5),
    )
    assert out.is_file() and os.path.getsize(out) == report["file_size_bytes"]
    with open(export.report_path(out)) as f:
        saved = json.load(f)
    for key in (
        "keras_top1",
        "tflite_top1",
        "top1_agreement",
        "max_abs_diff",
        "file_size_bytes",
        "latency",
        "census",
    ):
        assert saved[key] == report[key]
    assert saved["latency"]["threads"] == 2 and saved["latency"]["median_ms"] > 0
    # One census per file, taken before the metadata, which adds no op or tensor.
    assert saved["census"] == export.op_census(out.read_bytes())
    assert set(test_guard.GUARD_KEYS) <= set(saved)
    assert sorted(saved["search"]) == sorted(test_guard.SEARCH_KEYS)  # The JSON sorts keys.
    # All-integer unless the guard kept layers in float, and then it says so.
    assert (saved["census"]["num_float_ops"] > 0) == saved["float_fallback"]
    assert (saved["census"]["num_float_ops"] > 0) == bool(saved["denylist"])
    assert saved["search"]["met"] and saved["top1_agreement"] >= 0.95
    assert saved["num_labels"] == 10 and saved["io_type"] == "uint8"
    _, labels = export.read_metadata(out.read_bytes())
    assert labels == LABELS
    assert "int8" in export.format_table([dict(report, mode="int8")])
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".tmp-")]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(mode="int8", dataset=None), "calibration"),
        (
            dict(mode="int8", labels=["a", "b"]),
            "outputs 10 classes but the labels argument has 2 labels",
        ),
        (dict(mode="fp64"), "mode"),
        (dict(mode="fp32", io_type="uint8"), "io_type"),
        (dict(mode="fp16", max_accuracy_drop=0.5), "max_accuracy_drop"),
    ],
)
def test_bad_arguments_raise_and_write_nothing(kwargs, match, tmp_path):
    out = tmp_path / "model.tflite"
    kwargs.setdefault("dataset", _splits())
    mode = kwargs.pop("mode")
    with pytest.raises(ValueError, match=match):
        export.export_tflite(
            lib.loaded_model("lite0"), mode, str(out), export.ExportOptions(**kwargs)
        )
    assert os.listdir(tmp_path) == []


def test_convert_int8_without_calibration_raises():
    with pytest.raises(ValueError, match="representative_data"):
        export.convert(lib.loaded_model("lite0"), "int8")


def test_existing_output_survives_a_failed_export(tmp_path):
    out = tmp_path / "model.tflite"
    out.write_bytes(b"old")
    with pytest.raises(ValueError):
        export.export_tflite(
            lib.loaded_model("lite0"),
            "int8",
            str(out),
            export.ExportOptions(dataset=_splits(), labels=LABELS[:3]),
        )
    assert out.read_bytes() == b"old"
    assert sorted(os.listdir(tmp_path)) == ["model.tflite"]


class _Determinant(keras.layers.Layer):
    def call(self, x):
        return tf.expand_dims(tf.linalg.det(x[:, :4, :4, 0]), -1)


def test_non_builtin_ops_are_refused(tmp_path):
    inputs = keras.Input((lib.SIZE, lib.SIZE, 3))
    outputs = keras.layers.Dense(10, activation="softmax")(_Determinant()(inputs))
    model = keras.Model(inputs, outputs)
    out = tmp_path / "flex.tflite"
    with pytest.raises(ValueError, match="MatrixDeterminant"):
        export.export_tflite(model, "fp32", str(out), export.ExportOptions(dataset=_splits()))
    assert os.listdir(tmp_path) == []


def test_census_rejects_float_op_in_int8_model():
    calibration = lib.arrays("train", 200)[0]
    calibrated = export.calibrate(lib.savedmodel("lite0"), calibration)
    rows = export.layer_report(calibrated, calibration[:16])
    assert rows and rows == sorted(rows, key=lambda r: -r["noise_ratio"])
    assert {"tensor", "op", "noise_ratio", "rmse_scale", "scale"} <= set(rows[0])
    clean = export.quantize_calibrated(calibrated, "uint8")
    export.check_integer_only(export.op_census(clean))
    worst = rows[0]["tensor"]
    mixed = export.quantize_calibrated(calibrated, "uint8", denylist=[worst])
    census = export.op_census(mixed)
    assert worst in [op["output"] for op in census["float_ops"]]
    with pytest.raises(ValueError, match=re.escape(rows[0]["op"]) + r"#\d+\(" + re.escape(worst)):
        export.check_integer_only(census)
    # The search keeps layers in float until the (here: fake) accuracy target
    # is met: one float layer recovers the loss.
    found = export.search_denylist(
        calibrated,
        rows,
        lambda t: 0.9 if export.op_census(t)["num_float_ops"] else 0.8,
        reference_top1=0.9,
        max_accuracy_drop=0.5,
    )
    assert found.met and found.denylist == (worst,)
    assert [h.denylisted for h in found.history] == [0, 1]
    assert found.history[0].score.drop_pt == pytest.approx(10.0)
    # A top-1 alone has no error bar and no agreement; the report keeps its three keys.
    assert found.history[0].to_dict() == {
        "denylisted": 0,
        "top1": 0.8,
        "drop_pt": pytest.approx(10.0),
        "drop_se_pt": 0.0,
    }

    # With Scores, the target holds for the drop plus its standard
    # error: no measured loss but +-1.5 pt of doubt does not meet 1 pt.
    def scored(tflite):
        floats = export.op_census(tflite)["num_float_ops"]
        drop, se = (0.5, 0.3) if floats else (0.0, 1.5)
        return export.Score(
            top1=0.9 - drop / 100, reference_top1=0.9, drop_pt=drop, drop_se_pt=se, agreement=0.99
        )

    found = export.search_denylist(calibrated, rows, scored, 0.9, max_accuracy_drop=1.0)
    assert found.met and found.denylist == (worst,)
    history = [(h.score.drop_pt, h.score.drop_se_pt) for h in found.history]
    assert history == [(0.0, 1.5), (0.5, 0.3)]
    assert (found.score.drop_pt, found.score.drop_se_pt) == (0.5, 0.3)
    assert found.history[-1].to_dict()["agreement"] == 0.99


def test_compare_gives_the_paired_error_of_the_drop():
    labels = np.array([0, 1, 2, 3, 4, 5])
    reference = np.eye(6)[[0, 1, 2, 3, 0, 0]]  # 4 right.
    candidate = np.eye(6)[[0, 1, 2, 0, 4, 0]]  # 4 right: one lost, one gained.
    compared = verification.compare(reference, candidate, labels)
    assert compared.drop_pt == pytest.approx(0.0)
    assert compared.agreement == pytest.approx(4 / 6)
    # Per image +1, -1 and four 0: sample std sqrt(2/5), over sqrt(6).
    assert compared.drop_se_pt == pytest.approx(100 * np.sqrt(2 / 5) / np.sqrt(6))
    same = verification.compare(reference, reference, labels)
    assert same.drop_pt == 0.0 and same.drop_se_pt == 0.0


@pytest.mark.slow  # Kept out of the default run's 10-minute budget (README, Set-up).
def test_max_accuracy_drop_is_reported(tmp_path):
    out = tmp_path / "m.tflite"
    report = export.export_tflite(
        lib.loaded_model("lite0"),
        "int8",
        str(out),
        export.ExportOptions(
            dataset=_splits(), max_accuracy_drop=0.8, latency_runs=0, layer_report=True
        ),
    )
    search = report["search"]
    assert search["history"][0]["denylisted"] == 0
    # Both all-integer candidates were scored on validation and the better kept.
    assert set(search["ranges_top1"]) == {"mse", "minmax"}
    # The kept one has the lower drop plus standard error on validation.
    bounds = {n: v["drop_pt"] + v["drop_se_pt"] for n, v in search["ranges_scores"].items()}
    assert bounds[report["ranges"]] == min(bounds.values())
    # Layers go to float exactly when the kept file's bound misses the target.
    assert report["float_fallback"] == (min(bounds.values()) > 0.8)
    assert search["plain_top1"] == search["ranges_top1"][report["ranges"]]
    assert search["history"][0]["top1"] == search["plain_top1"]
    assert search["plain_drop_se_pt"] == search["ranges_scores"][report["ranges"]]["drop_se_pt"]
    assert report["mse_ranges"]["narrowed"] > 0
    assert search["met"] == (search["accuracy_drop_pt"] + search["accuracy_drop_se_pt"] <= 0.8)
    assert (
        report["denylist"]
        == [r["tensor"] for r in report["layer_report"]][: len(report["denylist"])]
    )
    # A denylisted model keeps float ops and is verified as such.
    assert (report["census"]["num_float_ops"] > 0) == bool(report["denylist"])


@pytest.mark.slow  # Kept out of the default run's 10-minute budget (README, Set-up).
@pytest.mark.timeout(600)
def test_cli_exports_int8_with_labels(tmp_path):
    labels = tmp_path / "labels.txt"
    labels.write_text("\n".join(LABELS) + "\n")
    out = tmp_path / "b.tflite"
    result = subprocess.run(
        [
            sys.executable,
            os.path.join(REPO, "scripts", "export_tflite.py"),
            f"--model={lib.trained_model('lite0')}",
            "--mode=int8",
            "--dataset=digits",
            f"--output={out}",
            f"--labels={labels}",
            "--latency_runs=3",
        ],
        capture_output=True,
        text=True,
        timeout=540,
        cwd=str(tmp_path),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "tflite top1" in result.stdout and "int8" in result.stdout
    # A plain last line, and no raw JSON (issue 21).
    assert result.stdout.splitlines()[-1].startswith(f"wrote {out}")
    assert "denylist search" not in result.stdout and "[{" not in result.stdout
    assert out.is_file() and os.path.isfile(str(out) + ".verify.json")
    _, written = export.read_metadata(out.read_bytes())
    assert written == LABELS
    with open(str(out) + ".verify.json") as f:
        report = json.load(f)
    assert report["top1_agreement"] >= 0.95 and report["search"]["met"]
    assert (report["census"]["num_float_ops"] > 0) == report["float_fallback"]


def test_int8_that_collapses_is_not_written(tmp_path, monkeypatch):
    # An int8 file that answers the same class for every image (what B0's
    # post-training int8 did in the scaling study) must not be written as if
    # it were fine: the guard (on by default, 1 pt) tries the float fallback,
    # then refuses with the figures and the remedies.
    lib.collapse_int8(monkeypatch)
    out = tmp_path / "m.tflite"
    with pytest.raises(
        ValueError,
        match=r"int8 export refused: .* float model .*pt lost.*"
        r"--mode=qat.*Lite variant.*--max_accuracy_drop=none",
    ) as e:
        export.export_tflite(
            lib.loaded_model("lite0"),
            "int8",
            str(out),
            export.ExportOptions(dataset=_splits(), latency_runs=0),
        )
    assert "'validation' split" in str(e.value)
    assert not out.exists() and not os.path.exists(export.report_path(str(out)))


def test_one_entry_with_options(tmp_path):
    out = tmp_path / "m.tflite"
    report = export.export(
        lib.loaded_model("lite0"),
        "fp32",
        str(out),
        export.ExportOptions(dataset=_splits(), latency_runs=0),
    )
    assert report["mode"] == "fp32" and out.is_file()
    assert report["top1_agreement"] >= 0.99
    with pytest.raises(ValueError, match="options: expected ExportOptions, got dict"):
        export.export(lib.loaded_model("lite0"), "fp32", str(out), {"dataset": "digits"})
    with pytest.raises(ValueError, match="mode: expected one of .*got 'int4'"):
        export.export(lib.loaded_model("lite0"), "int4", str(out))
