"""Top-1 / top-5 / loss of a .keras model or a .tflite file on a dataset split."""

import os
import time

import numpy as np
import tensorflow as tf

from keras_effnet import data, io, litert, runs
from keras_effnet.errors import ConfigError


def to_probabilities(outputs, renormalize=True):
    """Softmax outputs pass through; logits (negative or not summing to 1) get softmax.

    `renormalize=False` keeps softmax outputs exactly as the model gave them
    (a quantized output sums to 1 only within its steps): the scores MediaPipe
    reports, which `predict` matches.
    """
    outputs = outputs.astype(np.float64)
    sums = outputs.sum(axis=-1)
    if outputs.min() >= 0 and np.all(np.abs(sums - 1) < 0.05):
        return outputs / sums[:, None] if renormalize else outputs
    shifted = np.exp(outputs - outputs.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


class _KerasRunner:
    def __init__(self, model):
        if isinstance(model, (str, os.PathLike)):
            model = io.load_model(model, "model_path")
        self.model = model
        self.image_size = model.input_shape[1]
        self.classes = int(model.output_shape[-1])
        self._fn = tf.function(lambda x: model(x, training=False), reduce_retracing=True)

    def __call__(self, images):
        return np.asarray(self._fn(images))


class _TFLiteRunner:
    """Batched `litert.Runner` (one invocation per batch when the model's batch is open)."""

    def __init__(self, path, num_threads=None):
        self.runner = litert.Runner(path, num_threads, argument="model_path")
        self.image_size = self.runner.image_size[0]
        self.classes = int(self.runner.output["shape"][-1])

    def __call__(self, images):
        return self.runner(images, batch_size=len(images))


def evaluate(
    model,
    dataset=None,
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
        dataset: "digits", an image folder or a TFDS name (see `keras_effnet.data`);
            None = the model's run's (config.json beside it), else digits for
            a 10-class model (`keras_effnet.runs.resolve_data`).
        split: "train", "validation" or "test".
        data_dir: TFDS data directory (None = the run's for its dataset).
        image_size: input side; default the model's, else the run's.
        batch_size: evaluation batch size.
        max_examples: stop after this many examples (None = whole split).
        num_threads: TFLite interpreter threads.

    Returns:
        A dict: top1, top5 (only with more than 5 classes), loss (mean
        cross-entropy, no label smoothing), num_examples, examples_per_sec,
        model, format, dataset, dataset_source ("flag", "run" or "digits
        default"), split, num_classes.
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
    run = runs.find_run(path)
    choice = runs.resolve_data(path, runner.classes, dataset, data_dir, run)
    dataset, data_dir = choice.dataset, choice.data_dir
    size = image_size or runner.image_size or (run.image_size if run else None)
    if not size:
        raise ConfigError("The model has a dynamic input size: pass image_size.")
    if image_size and runner.image_size and image_size != runner.image_size:
        raise ConfigError(
            f"`image_size` {image_size} does not fit the model: it takes {runner.image_size} px "
            f"inputs. Omit --image_size (the model's size is used). "
            f"Received: image_size={image_size}, model={path or model.name!r}"
        )
    info = data.dataset_info(dataset, data_dir)
    runs.check_classes(
        runner.classes, info.num_classes, f"dataset {dataset!r}", repr(path or model.name)
    )
    ds = data.load_dataset(dataset, split, int(size), batch_size, data_dir=data_dir, cache=False)
    correct1 = correct5 = count = 0
    loss_sum = 0.0
    start = time.perf_counter()
    for images, labels in ds:
        labels = labels.numpy()
        probs = to_probabilities(runner(images.numpy()))
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
    result = {
        "top1": correct1 / count,
        "top5": correct5 / count,
        "loss": loss_sum / count,
        "num_examples": count,
        "examples_per_sec": count / max(elapsed, 1e-9),
        "model": path or model.name,
        "format": fmt,
        "dataset": dataset,
        "dataset_source": choice.source,
        "split": split,
        "num_classes": runner.classes,
    }
    if not shows_top5(runner.classes):
        del result["top5"]  # Always 1.0: no information (issue 21).
    return result


def shows_top5(num_classes):
    """Top-5 is reported only where it says something: more than 5 classes."""
    return num_classes > 5


def format_table(results):
    """A small text table of one or more `evaluate` results."""
    rows = results if isinstance(results, list) else [results]
    top5 = any("top5" in r for r in rows)
    header = f"{'model':<40} {'format':<7} {'split':<10} {'n':>6} {'top1':>7} " + (
        f"{'top5':>7} {'loss':>8}" if top5 else f"{'loss':>8}"
    )
    lines = [header, "-" * len(header)]
    for r in rows:
        name = r["model"] if len(r["model"]) <= 40 else "..." + r["model"][-37:]
        five = (f"{r['top5']:>7.4f} " if "top5" in r else f"{'-':>7} ") if top5 else ""
        lines.append(
            f"{name:<40} {r['format']:<7} {r['split']:<10} {r['num_examples']:>6} "
            f"{r['top1']:>7.4f} {five}{r['loss']:>8.4f}"
        )
    return "\n".join(lines)
