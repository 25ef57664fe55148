"""MSE activation ranges (export/ranges.py): narrower ranges, same graph, lower int8 error."""

import numpy as np
import pytest

from keras_effnet import export
from keras_effnet.bench import ptq
from keras_effnet.export import converter, flatbuf, ranges, verification

import export_testlib as lib

pytestmark = pytest.mark.timeout(900)


def test_best_ratio_clips_rare_outliers_and_keeps_an_even_spread():
    rng = np.random.default_rng(0)
    body = rng.normal(0.0, 1.0, 20_000)
    with_outliers = np.concatenate([body, [40.0, -30.0]])
    ratio = ranges.best_ratio(with_outliers, -30.0, 40.0)
    assert ratio < 1.0
    assert ranges.quantization_mse(
        with_outliers, ratio * -30.0, ratio * 40.0
    ) < ranges.quantization_mse(with_outliers, -30.0, 40.0)
    # Values spread evenly over the whole range: clipping only adds error.
    even = rng.uniform(-1.0, 3.0, 20_000)
    assert ranges.best_ratio(even, -1.0, 3.0) == 1.0


def test_quantization_mse_is_rounding_noise_on_the_grid():
    # Uniform values over [0, 255] with step 1: error of uniform rounding, 1/12.
    values = np.random.default_rng(1).uniform(0.0, 255.0, 100_000)
    assert ranges.quantization_mse(values, 0.0, 255.0) == pytest.approx(1 / 12, rel=0.02)
    assert ranges.quantization_mse(np.array([0.5, -0.5]), 0.0, 0.0) == 0.25


# Trained B0 (swish + SE, where clipping ranges pays) is trained for the slow run only.
_NEEDS_B0 = pytest.mark.slow


@pytest.fixture(scope="module")
def calibrated_b0():
    images = lib.arrays("train", 200)[0]
    calibrated = converter.calibrate(lib.savedmodel("b0"), images)
    refined, summary = ranges.mse_ranges(calibrated, images)
    return calibrated, refined, summary


@_NEEDS_B0
def test_mse_ranges_only_narrow_activation_ranges(calibrated_b0):
    calibrated, refined, summary = calibrated_b0
    before, after = flatbuf.read_model(calibrated), flatbuf.read_model(refined)
    assert [b.data is None or bytes(b.data) for b in before.buffers] == [
        b.data is None or bytes(b.data) for b in after.buffers
    ]  # Weights untouched.
    narrowed = 0
    for old, new in zip(before.subgraphs[0].tensors, after.subgraphs[0].tensors):
        q_old, q_new = old.quantization, new.quantization
        if q_old is None or q_old.min is None or len(q_old.min) != 1:
            continue
        low, high = min(q_old.min[0], 0.0), max(q_old.max[0], 0.0)
        assert low - 1e-6 <= q_new.min[0] <= 0.0 <= q_new.max[0] <= high + 1e-6
        if q_new.max[0] - q_new.min[0] < 0.999 * (high - low):
            narrowed += 1
            assert q_new.max[0] - q_new.min[0] >= 0.5 * (high - low) - 1e-6  # ranges.RATIOS
    assert summary["tensors"] > 100 and narrowed == summary["narrowed"] > 0
    assert 0.5 <= summary["min_ratio"] <= summary["median_ratio"] <= 1.0


@_NEEDS_B0
def test_mse_ranges_lower_the_int8_error_of_a_b_variant(calibrated_b0):
    calibrated, refined, _ = calibrated_b0
    images, labels = lib.arrays("test")
    reference = verification.reference_fn(lib.loaded_model("b0"))(images)
    errors = {}
    for name, model in (("minmax", calibrated), ("mse", refined)):
        out = verification.run_tflite(converter.quantize_calibrated(model, "uint8"), images)
        errors[name] = float(np.mean(np.abs(out - reference)))
    assert errors["mse"] < errors["minmax"], errors


@_NEEDS_B0
def test_convert_defaults_to_mse_ranges(calibrated_b0):
    # export.convert's int8 is calibrate -> mse_ranges -> quantize (the same bytes).
    _, refined, _ = calibrated_b0
    expected = converter.quantize_calibrated(refined, "uint8")
    assert lib.converted("b0", "int8") == expected


@_NEEDS_B0
def test_bad_ranges_and_images_name_the_argument(calibrated_b0):
    with pytest.raises(ValueError, match=r"ranges: expected one of .*got 'p99'"):
        export.convert(lib.savedmodel("b0"), "int8", lib.arrays("train", 8)[0], ranges="p99")
    with pytest.raises(ValueError, match=r"images: expected a non-empty \(N, H, W, 3\) batch"):
        ranges.mse_ranges(calibrated_b0[0], np.zeros((0, 32, 32, 3), np.float32))


@pytest.mark.slow
def test_ptq_benchmark_scores_every_file_on_both_splits():
    row = ptq.ptq_figures(
        lib.trained_model("b0"), 0, image_size=lib.SIZE, num_calibration=100, report_layers=3
    )
    assert row["guarded_ranges"] in ranges.RANGES and len(row["worst_layers"]) == 3
    for split in ("validation", "test"):
        for name in ("int8", "mse", "guarded"):
            assert 0.5 < row[f"{split}_{name}_top1"] <= 1.0  # A trained model, not chance.
        assert row[f"{split}_mse_drop_pt"] == pytest.approx(
            100 * (row[f"{split}_float_top1"] - row[f"{split}_mse_top1"])
        )
    if row["guarded_float_layers"] == 0 and row["guarded_ranges"] == "mse":
        # Without a fallback the default file is the MSE file.
        assert row["test_guarded_top1"] == row["test_mse_top1"]
