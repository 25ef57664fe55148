"""Throughput measurement: training steps and inference, ours vs keras.applications.

Timings interleave the models being compared (A, B, A, B, ...) and report
medians, so that a background load on the machine affects both alike.
"""

import statistics
import time

import numpy as np


def _batch(model, batch_size, classes, seed=0):
    rng = np.random.default_rng(seed)
    shape = (batch_size,) + tuple(model.inputs[0].shape[1:])
    images = rng.uniform(0, 255, shape).astype("float32")
    labels = rng.integers(0, classes, batch_size).astype("int32")
    return images, labels


class TrainStep:
    """A compiled training step of `model` on one fixed batch."""

    def __init__(self, model, batch_size, jit_compile=False, seed=0):
        import keras

        classes = model.outputs[0].shape[-1]
        self.images, self.labels = _batch(model, batch_size, classes, seed)
        self.model = model
        model.compile(
            optimizer=keras.optimizers.RMSprop(1e-3, rho=0.9, momentum=0.9, epsilon=1e-3),
            loss="sparse_categorical_crossentropy",
            jit_compile=jit_compile,
        )
        self.batch_size = batch_size

    def __call__(self):
        self.model.train_on_batch(self.images, self.labels)


class InferenceStep:
    """A compiled forward pass (training=False) of `model` on one fixed batch."""

    def __init__(self, model, batch_size, jit_compile=False, seed=0):
        import tensorflow as tf

        classes = model.outputs[0].shape[-1]
        images, _ = _batch(model, batch_size, classes, seed)
        self.images = tf.constant(images)
        self.fn = tf.function(lambda x: model(x, training=False), jit_compile=jit_compile)
        self.batch_size = batch_size

    def __call__(self):
        self.fn(self.images).numpy()


def interleaved_throughput(steps, iterations=5, repeats=5, warmup=2):
    """Images/s of each step callable, measured in interleaved rounds.

    Args:
        steps: dict name -> step callable with a `batch_size` attribute.
        iterations: calls per timed round.
        repeats: timed rounds per step (the median is reported).
        warmup: untimed calls per step first (tracing, allocation).

    Returns:
        dict name -> {"images_per_s": median, "rounds": [...]}.
    """
    for step in steps.values():
        for _ in range(warmup):
            step()
    rounds = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            start = time.perf_counter()
            for _ in range(iterations):
                step()
            elapsed = time.perf_counter() - start
            rounds[name].append(step.batch_size * iterations / elapsed)
    return {
        name: {"images_per_s": statistics.median(values), "rounds": values}
        for name, values in rounds.items()
    }


def compare_b0_with_keras_applications(resolution, batch_size, mode, iterations=5, repeats=5):
    """Ours vs keras.applications EfficientNetB0 (weights=None, same shape and classes).

    Args:
        resolution: input side.
        batch_size: batch size.
        mode: "train" or "inference".

    Returns:
        dict with both throughputs and ratio = ours / keras.applications.
    """
    import keras

    import keras_effnet

    if mode not in ("train", "inference"):
        raise ValueError(f'`mode` must be "train" or "inference". Received: mode={mode!r}')
    shape = (resolution, resolution, 3)
    step_cls = TrainStep if mode == "train" else InferenceStep
    reference = keras.applications.EfficientNetB0(weights=None, input_shape=shape, classes=1000)
    ours = keras_effnet.EfficientNetB0(weights=None, input_shape=shape, classes=1000)
    results = interleaved_throughput(
        {
            "keras.applications": step_cls(reference, batch_size),
            "keras_effnet": step_cls(ours, batch_size),
        },
        iterations=iterations,
        repeats=repeats,
    )
    ref = results["keras.applications"]["images_per_s"]
    mine = results["keras_effnet"]["images_per_s"]
    return {
        "mode": mode,
        "resolution": resolution,
        "batch_size": batch_size,
        "keras_applications_images_per_s": ref,
        "keras_effnet_images_per_s": mine,
        "ratio": mine / ref,
    }
