"""Top-1 / top-5 / loss of a .keras model or a .tflite file on a dataset split."""

import os
import time

import numpy as np
import tensorflow as tf

from keras_effnet import data, io, litert
from keras_effnet.errors import ConfigError


def _to_probabilities(outputs):
    """Softmax outputs pass through; logits (negative or not summing to 1) get softmax."""
    outputs = outputs.astype(np.float64)
    sums = outputs.sum(axis=-1)
    if outputs.min() >= 0 and np.all(np.abs(sums - 1) < 0.05):
        return outputs / sums[:, None]
    shifted = np.exp(outputs - outputs.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


class _KerasRunner:
    def __init__(self, model):
        if isinstance(model, (str, os.PathLike)):
            model = io.load_model(model, "model_path")
        self.model = model
        self.image_size = model.input_shape[1]
        self._fn = tf.function(lambda x: model(x, training=False), reduce_retracing=True)

    def __call__(self, images):
        return np.asarray(self._fn(images))


class _TFLiteRunner:
    """Batched `litert.Runner` (one invocation per batch when the model's batch is open)."""

    def __init__(self, path, num_threads=None):
        self.runner = litert.Runner(path, num_threads, argument="model_path")
        self.image_size = self.runner.image_size[0]

    def __call__(self, images):
        return self.runner(images, batch_size=len(images))


def evaluate(
    model,
    dataset="digits",
    split="test",
    *,
    data_dir=None,
    image_size=None,
    batch_size=64,
    max_examples=None,
    num_threads=None,
):
    """Evaluates a classifier on a dataset split.

    Args:
        model: path to a .keras or .tflite file, or a `keras.Model`. Its input
            is float RGB 0..255 (quantized TFLite inputs are quantized here with
            the input tensor's scale and zero point).
        dataset: "digits", an image folder or a TFDS name (see `keras_effnet.data`).
        split: "train", "validation" or "test".
        data_dir: TFDS data directory.
        image_size: input side; default the model's.
        batch_size: evaluation batch size.
        max_examples: stop after this many examples (None = whole split).
        num_threads: TFLite interpreter threads.

    Returns:
        A dict: top1, top5 (top-k with k = min(5, classes)), loss (mean
        cross-entropy, no label smoothing), num_examples, examples_per_sec,
        model, format, dataset, split.
    """
    for name, value in (
        ("image_size", image_size),
        ("max_examples", max_examples),
        ("num_threads", num_threads),
        ("batch_size", batch_size),
    ):  # None = the default; zero or negative is a mistake, not "all" or "auto".
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or value < 1
        ):
            raise ConfigError(
                f"`{name}` must be a positive int or None. Received: {name}={value!r}"
            )
    path = None if hasattr(model, "predict") else str(model)
    if path is not None and not os.path.isfile(path):
        raise ConfigError(f"Model file not found. Received: model={path!r}")
    if path is not None and path.endswith(".tflite"):
        runner, fmt = _TFLiteRunner(path, num_threads), "tflite"
    elif path is None or path.endswith(".keras"):
        runner, fmt = _KerasRunner(model if path is None else path), "keras"
    else:
        raise ConfigError(
            f"`model` must be a .keras or .tflite file or a keras.Model. Received: model={path!r}"
        )
    size = image_size or runner.image_size
    if not size:
        raise ConfigError("The model has a dynamic input size: pass image_size.")
    if image_size and runner.image_size and image_size != runner.image_size:
        raise ConfigError(
            f"`image_size` {image_size} does not fit the model: it takes {runner.image_size} px "
            f"inputs. Omit --image_size (the model's size is used). "
            f"Received: image_size={image_size}, model={path or model.name!r}"
        )
    info = data.dataset_info(dataset, data_dir)
    ds = data.load_dataset(dataset, split, int(size), batch_size, data_dir=data_dir, cache=False)
    correct1 = correct5 = count = 0
    loss_sum = 0.0
    start = time.perf_counter()
    for images, labels in ds:
        labels = labels.numpy()
        probs = _to_probabilities(runner(images.numpy()))
        if probs.shape[-1] != info.num_classes:
            raise ConfigError(
                f"Model has {probs.shape[-1]} outputs but dataset {dataset!r} has "
                f"{info.num_classes} classes. Received: model={path or model.name!r}"
            )
        k = min(5, probs.shape[-1])
        topk = np.argsort(-probs, axis=-1)[:, :k]
        correct1 += int(np.sum(topk[:, 0] == labels))
        correct5 += int(np.sum(np.any(topk == labels[:, None], axis=-1)))
        loss_sum += float(
            -np.sum(np.log(np.clip(probs[np.arange(len(labels)), labels], 1e-7, 1.0)))
        )
        count += len(labels)
        if max_examples and count >= max_examples:
            break
    if count == 0:
        raise ConfigError(f"Split {split!r} of dataset {dataset!r} is empty.")
    elapsed = time.perf_counter() - start
    return {
        "top1": correct1 / count,
        "top5": correct5 / count,
        "loss": loss_sum / count,
        "num_examples": count,
        "examples_per_sec": count / max(elapsed, 1e-9),
        "model": path or model.name,
        "format": fmt,
        "dataset": dataset,
        "split": split,
    }


def format_table(results):
    """A small text table of one or more `evaluate` results."""
    rows = results if isinstance(results, list) else [results]
    header = (
        f"{'model':<40} {'format':<7} {'split':<10} {'n':>6} {'top1':>7} {'top5':>7} {'loss':>8}"
    )
    lines = [header, "-" * len(header)]
    for r in rows:
        name = r["model"] if len(r["model"]) <= 40 else "..." + r["model"][-37:]
        lines.append(
            f"{name:<40} {r['format']:<7} {r['split']:<10} {r['num_examples']:>6} "
            f"{r['top1']:>7.4f} {r['top5']:>7.4f} {r['loss']:>8.4f}"
        )
    return "\n".join(lines)
