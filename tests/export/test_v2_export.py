"""Export modes on a trained EfficientNetV2-B0 agree with Keras (as tests/export/test_export_modes.py for V1)."""

import functools
import os

import pytest

from keras_effnet import export

import export_testlib as lib

# The V1 export tests cover the same converter path; this repeat on V2 trains its
# own model, so it runs with the slow tests.
pytestmark = [pytest.mark.timeout(900), pytest.mark.slow]


def trained_v2b0():
    """EfficientNetV2-B0 trained on digits at 32x32 (export_testlib's training)."""
    return lib.loaded_model("v2b0")


@functools.lru_cache(maxsize=None)
def converted(mode):
    model = trained_v2b0()
    savedmodel = export.export_savedmodel(
        model, os.path.join(lib.workdir(), f"v2b0_savedmodel_{mode}")
    )
    calibration = lib.arrays("train", 200)[0] if mode == "int8" else None
    return export.convert(savedmodel, mode, calibration)


@pytest.fixture(scope="module")
def test_data():
    return lib.arrays("test")


def test_v2_model_is_trained_and_savedmodel_matches(test_data, tmp_path):
    model = trained_v2b0()
    assert model.name == "efficientnetv2-b0"
    report = export.export_tflite(
        model, "savedmodel", str(tmp_path / "sm"), export.ExportOptions(dataset={"test": test_data})
    )
    assert report["max_abs_diff"] < 1e-4
    assert report["top1_agreement"] == 1.0
    assert report["keras_top1"] > 0.8  # The fixture really is trained.


def test_fp32_agrees(test_data):
    images, labels = test_data
    report = export.verify_arrays(
        converted("fp32"), trained_v2b0(), images, labels, latency_runs=3
    ).to_dict()
    export.check_builtin_only(report["census"])
    assert report["census"]["io"]["inputs"][0]["shape"] == [1, lib.SIZE, lib.SIZE, 3]
    assert report["max_abs_diff"] < 1e-4
    assert report["top1_agreement"] == 1.0


def test_int8_is_integer_only_and_agrees(test_data):
    images, labels = test_data
    report = export.verify_arrays(
        converted("int8"), trained_v2b0(), images, labels, latency_runs=3
    ).to_dict()
    census = report["census"]
    export.check_builtin_only(census)
    export.check_integer_only(census)
    assert census["num_float_ops"] == 0
    inp = census["io"]["inputs"][0]
    assert (inp["dtype"], inp["scale"], inp["zero_point"]) == ("uint8", 1.0, 0)
    # The fused stages are plain convs (no SE); the MBConv stages keep swish +
    # SE, which plain post-training int8 handles worst (same floor as V1 B0).
    assert report["top1_agreement"] >= 0.85, report
    print(
        f"v2b0 int8: top1 agreement {report['top1_agreement']:.3f}, keras top1 "
        f"{report['keras_top1']:.3f}, tflite top1 {report['tflite_top1']:.3f}"
    )
