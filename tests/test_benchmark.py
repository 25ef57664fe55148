"""The benchmark helpers measure real steps of both models (figures live in the README)."""

import keras
import pytest

import keras_effnet
from keras_effnet import benchmark


def test_interleaved_throughput_runs_each_step():
    counts = {"a": 0, "b": 0}

    class Step:
        batch_size = 4

        def __init__(self, name):
            self.name = name

        def __call__(self):
            counts[self.name] += 1

    result = benchmark.interleaved_throughput(
        {"a": Step("a"), "b": Step("b")}, iterations=2, repeats=3, warmup=1
    )
    assert counts == {"a": 7, "b": 7}
    assert set(result) == {"a", "b"} and len(result["a"]["rounds"]) == 3
    assert result["a"]["images_per_s"] > 0


def test_train_step_updates_weights():
    model = keras_effnet.EfficientNetLite0(classes=3, input_shape=(32, 32, 3))
    step = benchmark.TrainStep(model, batch_size=4)
    before = keras.ops.convert_to_numpy(model.get_layer("predictions").kernel).copy()
    step()
    after = keras.ops.convert_to_numpy(model.get_layer("predictions").kernel)
    assert (before != after).any()


def test_compare_rejects_unknown_mode():
    with pytest.raises(ValueError, match="mode='eval'"):
        benchmark.compare_b0_with_keras_applications(32, 2, "eval")


def test_compare_small():
    row = benchmark.compare_b0_with_keras_applications(32, 2, "inference", iterations=1, repeats=1)
    # The same architecture timed in the same rounds: both rates measured, and
    # within a factor of 3 of each other (a wrong batch size, model or a
    # non-interleaved measurement under load would show here).
    assert row["keras_effnet_images_per_s"] > 0 and row["keras_applications_images_per_s"] > 0
    assert 1 / 3 < row["ratio"] < 3
