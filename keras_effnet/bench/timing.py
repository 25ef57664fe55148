"""Timing primitives: one interleaved timing loop and the steps it times.

Timings interleave the things being compared (A, B, A, B, ...) and report
medians, so that a background load on the machine affects all of them alike.
A step is a callable with a `batch_size` attribute (images per call).
"""

import statistics
import time

import keras
import numpy as np
import tensorflow as tf

from keras_effnet import litert


def _batch(model, batch_size, classes, seed=0):
    rng = np.random.default_rng(seed)
    shape = (batch_size,) + tuple(model.inputs[0].shape[1:])
    images = rng.uniform(0, 255, shape).astype("float32")
    labels = rng.integers(0, classes, batch_size).astype("int32")
    return images, labels


class TrainStep:
    """A compiled training step of `model` on one fixed batch."""

    def __init__(self, model, batch_size, jit_compile=False, seed=0):
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
        classes = model.outputs[0].shape[-1]
        images, _ = _batch(model, batch_size, classes, seed)
        self.images = tf.constant(images)
        self.fn = tf.function(lambda x: model(x, training=False), jit_compile=jit_compile)
        self.batch_size = batch_size

    def __call__(self):
        self.fn(self.images).numpy()


class LiteRTStep:
    """One LiteRT invocation at batch 1 of a .tflite (bytes or path), random input."""

    batch_size = 1

    def __init__(self, tflite, threads=2):
        self.runner = litert.Runner(tflite, threads)
        self.runner.prime()
        self.threads = threads

    def __call__(self):
        self.runner.invoke()


def interleaved_rounds(steps, *, iterations=5, repeats=5, warmup=2, pause=0.0, settle=0):
    """Seconds of every timed call of each step, in interleaved rounds.

    Args:
        steps: dict name -> step callable.
        iterations: timed calls per step and round.
        repeats: rounds.
        warmup: untimed calls per step first (tracing, allocation).
        pause: seconds of sleep before each step's turn in a round.
        settle: untimed calls at the start of each turn.

    Returns:
        dict name -> list (one per round) of lists of call durations (s).
    """
    for step in steps.values():
        for _ in range(warmup):
            step()
    rounds = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            if pause:
                time.sleep(pause)
            for _ in range(settle):
                step()
            calls = []
            for _ in range(iterations):
                start = time.perf_counter()
                step()
                calls.append(time.perf_counter() - start)
            rounds[name].append(calls)
    return rounds


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
    rounds = interleaved_rounds(steps, iterations=iterations, repeats=repeats, warmup=warmup)
    out = {}
    for name, calls in rounds.items():
        values = [steps[name].batch_size * len(c) / sum(c) for c in calls]
        out[name] = {"images_per_s": statistics.median(values), "rounds": values}
    return out


def interleaved_latency(models, *, threads=2, runs=50, rounds=10, warmup=3):
    """Median LiteRT latency (ms, batch 1) of several models, timed in turns.

    Each round times every model for `runs / rounds` invocations (after a
    pause and one untimed invoke); a model's figure is the median of its
    per-round medians.

    Args:
        models: dict name -> .tflite bytes or path.
    """
    per_round = max(1, runs // rounds)
    steps = {name: LiteRTStep(tflite, threads) for name, tflite in models.items()}
    # The pause lets the previous interpreter's worker threads stop spinning
    # (they busy-wait after each invoke and would steal the cores).
    timed = interleaved_rounds(
        steps, iterations=per_round, repeats=rounds, warmup=warmup, pause=0.05, settle=1
    )
    out = {}
    for name, calls in timed.items():
        medians = [1e3 * float(np.median(c)) for c in calls]
        out[name] = {
            "median_ms": float(np.median(medians)),
            "min_round_ms": min(medians),
            "rounds": rounds,
            "runs": per_round * rounds,
            "threads": threads,
        }
    return out
