"""Magnitude pruning: schedule, sparsity on Conv2D/Dense, strip, convert."""

import json

import keras
import numpy as np
import pytest

import keras_effnet
from keras_effnet.core import graph
from keras_effnet.export import ExportOptions, datasets
from keras_effnet.export.quant import prune

import export_testlib as lib

SIZE = 32


def _tiny():
    return keras_effnet.build_efficientnet(
        0.5, 0.5, SIZE, input_shape=(SIZE, SIZE, 3), classes=10, weights=None
    )


@pytest.fixture(scope="module")
def train():
    return datasets.load_arrays("digits", "train", (SIZE, SIZE))


@pytest.fixture(scope="module")
def pruned(train):
    keras.utils.set_random_seed(0)
    model = _tiny()
    options = ExportOptions(prune=0.5, prune_epochs=1)
    copy, report = prune.prune_model(model, train, options, steps_per_epoch=4)
    return model, copy, report


@pytest.mark.parametrize("schedule", ["constant", "polynomial"])
def test_schedule_reaches_target_within_the_steps(schedule):
    sched = prune.make_schedule(0.6, total_steps=30, schedule=schedule)
    updates = [(step, float(sched(step)[1])) for step in range(31) if bool(sched(step)[0])]
    assert updates, "the schedule never prunes"
    assert updates[-1][1] == pytest.approx(0.6)
    reached = min(step for step, value in updates if value == pytest.approx(0.6))
    if schedule == "constant":
        assert reached == 0
    else:
        assert updates[0][1] < 0.6  # ramps up
        assert 0 < reached <= 24  # with steps left to fine-tune at target


@pytest.mark.slow  # Kept out of the default run's 10-minute budget (README, Set-up).
def test_pruning_reaches_requested_sparsity_on_conv_and_dense(pruned):
    original, copy, report = pruned
    assert report["sparsity"] == pytest.approx(0.5, abs=0.01)
    assert report["keras_sparsity"] == pytest.approx(0.5, abs=0.01)
    assert report["num_layers"] > 20
    for name, value in report["layers"].items():
        assert value == pytest.approx(0.5, abs=0.02), name
    flat = graph.flatten_model(copy)
    depthwise = flat.get_layer("block1a_dwconv").get_weights()[0]
    assert np.mean(depthwise == 0) < 0.05  # not pruned
    # The caller's model is untouched.
    assert prune.sparsity_report(graph.flatten_model(original))["sparsity"] < 0.01


@pytest.mark.slow  # Kept out of the default run's 10-minute budget (README, Set-up).
def test_stripped_model_converts_and_compresses(pruned, tmp_path):
    from keras_effnet.export import converter

    original, copy, _ = pruned
    dense = converter.convert(original, "dynamic")
    sparse = converter.convert(copy, "dynamic")
    assert prune.tflite_weight_sparsity(sparse)["sparsity"] > 0.45
    assert prune.tflite_weight_sparsity(dense)["sparsity"] < 0.05
    assert prune.gzip_size(sparse) < 0.85 * prune.gzip_size(dense)
    path = tmp_path / "sparse.tflite"
    path.write_bytes(sparse)
    assert prune.gzip_size(str(path)) == prune.gzip_size(sparse)
    json.dumps(pruned[2])  # the report is JSON-ready


@pytest.mark.slow
def test_prune_then_qat_keeps_zeros_in_int8(train):
    from keras_effnet.export.quant import qat

    options = ExportOptions(qat_epochs=1, prune=0.5, num_calibration=32)
    result = qat.quantization_aware_training(_tiny(), train, options, steps_per_epoch=3)
    assert result.census["float_ops"] == []
    assert result.pruning["sparsity"] == pytest.approx(0.5, abs=0.01)
    # Pruning-preserving QAT: the zeros survive fine-tuning and int8.
    assert result.pruning["tflite"]["sparsity"] > 0.45


def test_bad_sparsity_and_schedule_name_the_argument(train):
    with pytest.raises(ValueError, match="sparsity"):
        prune.make_schedule(1.5, 10)
    with pytest.raises(ValueError, match="sparsity"):
        prune.prune_model(_tiny(), train, ExportOptions(prune=0))
    with pytest.raises(ValueError, match="schedule"):
        prune.make_schedule(0.5, 10, schedule="cubic")


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_cli_prune_then_dynamic_range_export(tmp_path):
    _, report = lib.run_export_cli(
        tmp_path / "lite0_pruned.tflite",
        "--mode=dynamic",
        "--prune=0.5",
        "--prune_epochs=1",
        "--latency_runs=2",
        "--test_limit=200",
    )
    assert report["mode"] == "dynamic"
    assert report["pruning"]["sparsity"] == pytest.approx(0.5, abs=0.01)
    assert report["pruning"]["tflite"]["sparsity"] > 0.45
    assert 0 < report["gzip_size_bytes"] < report["file_size_bytes"]
    # Against the pruned float model; one epoch at 50% leaves near-ties.
    assert report["top1_agreement"] >= 0.95
