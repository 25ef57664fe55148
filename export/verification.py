"""Checks an exported model against the float Keras model on held-out data.

Figures: top-1 of both, their top-1 agreement, max/mean |output difference|
(quantized outputs are dequantized first), file size, LiteRT latency (median
ms at batch 1 on N threads) and the op/dtype census.
"""

import os

import numpy as np
import tensorflow as tf

from keras_effnet import litert
from keras_effnet.export import census as census_lib
from keras_effnet.export import datasets


def run_tflite(tflite, images, *, threads=2, runner=None):
    """Runs a single-input model on float 0..255 images, one at a time (batch 1).

    Integer inputs are quantized with the model's input params (for a uint8
    model with pinned params that is the raw pixel); outputs are dequantized.

    Returns:
        float32 outputs, shape (N, classes).
    """
    return (runner or litert.Runner(tflite, threads))(images)


def latency(tflite, *, threads=2, runs=50, warmup=5, image=None):
    """LiteRT latency at batch 1: median/p90/mean milliseconds over `runs`."""
    return litert.Runner(tflite, threads).latency(runs=runs, warmup=warmup, image=image)


def reference_fn(reference):
    """A predict function (images -> float32 outputs) from a model/callable."""
    if hasattr(reference, "predict"):
        return lambda x: np.asarray(reference.predict(x, batch_size=64, verbose=0), np.float32)
    if callable(reference):
        return lambda x: np.asarray(reference(x), np.float32)
    raise ValueError(
        f"reference: expected a Keras model or a callable, got {type(reference).__name__}"
    )


def compare(reference_out, candidate_out, labels):
    """Top-1 of both, their agreement, the top-1 drop with its error, output differences.

    `top1_drop_pt` is reference minus candidate top-1 in points;
    `top1_drop_se_pt` its standard error as a paired estimate (per image: +1
    lost, -1 gained, 0 same outcome), which only the images where the two
    disagree feed: with 7 % disagreement on 270 images the drop is known to
    about +-1.6 pt, with 1.5 % to about +-0.7 pt (docs/export.md, "The int8 guard").
    """
    ref_top = reference_out.argmax(-1)
    cand_top = candidate_out.argmax(-1)
    diff = np.abs(reference_out - candidate_out)
    per_image = (ref_top == labels).astype(np.float64) - (cand_top == labels)
    n = len(labels)
    se = float(per_image.std(ddof=1) / np.sqrt(n)) if n > 1 else 0.0
    return {
        "num_examples": int(n),
        "keras_top1": float(np.mean(ref_top == labels)),
        "tflite_top1": float(np.mean(cand_top == labels)),
        "top1_agreement": float(np.mean(ref_top == cand_top)),
        "top1_drop_pt": 100.0 * float(per_image.mean()),
        "top1_drop_se_pt": 100.0 * se,
        "max_abs_diff": float(diff.max()),
        "mean_abs_diff": float(diff.mean()),
    }


def verify(
    tflite,
    reference,
    dataset,
    *,
    threads=2,
    split="test",
    limit=None,
    data_dir=None,
    latency_runs=50,
    images=None,
    labels=None,
):
    """Verifies a .tflite against the float reference on held-out data.

    Args:
        tflite: .tflite bytes or path.
        reference: The float Keras model, or a predict function mapping float32
            images (N, H, W, 3) 0..255 to outputs (N, classes).
        dataset: See `datasets.load_arrays` (name, tf.data, tuple, dict); loaded
            at the model's input size from `split`.
        threads: LiteRT threads for accuracy and latency runs.
        split: Held-out split (default "test").
        limit: Use at most this many examples.
        data_dir: For named datasets.
        latency_runs: Timed invocations (0 skips latency).
        images, labels: Pre-loaded arrays (skip loading `dataset`).

    Returns:
        A JSON-ready dict: file_size_bytes, the `compare` figures, latency and
        census.
    """
    data = litert.read_flatbuffer(tflite)
    census = census_lib.op_census(data)
    if images is None:
        height, width = census["io"]["inputs"][0]["shape"][1:3]
        images, labels = datasets.load_arrays(
            dataset, split, (height, width), limit=limit, data_dir=data_dir
        )
    ref_out = reference_fn(reference)(images)
    runner = litert.Runner(data, threads)
    out = runner(images)
    report = {"file_size_bytes": len(data), "split": split}
    report.update(compare(ref_out, out, labels))
    report["latency"] = runner.latency(runs=latency_runs) if latency_runs else None
    report["census"] = census
    return report


def verify_savedmodel(
    path, reference, dataset, *, split="test", limit=None, data_dir=None, images=None, labels=None
):
    """Like `verify` for a SavedModel directory (serving signature)."""
    loaded = tf.saved_model.load(os.fspath(path))
    serve = loaded.signatures["serving_default"]
    spec = serve.structured_input_signature[1]
    name, tensor_spec = next(iter(spec.items()))
    if images is None:
        images, labels = datasets.load_arrays(
            dataset, split, tuple(tensor_spec.shape[1:3]), limit=limit, data_dir=data_dir
        )
    batch = tensor_spec.shape[0]
    step = 64 if batch is None else int(batch)
    outs = []
    for i in range(0, len(images), step):
        result = serve(**{name: tf.constant(images[i : i + step])})
        outs.append(next(iter(result.values())).numpy())
    size = sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files)
    report = {"file_size_bytes": size, "split": split, "latency": None, "census": None}
    report.update(
        compare(reference_fn(reference)(images), np.concatenate(outs).astype(np.float32), labels)
    )
    return report


def format_table(rows):
    """Formats verification reports (dicts with a "mode" key) as a table."""
    header = (
        "mode",
        "io",
        "size MB",
        "keras top1",
        "tflite top1",
        "agree",
        "max|diff|",
        "ms (thr)",
        "float ops",
        "denylisted",
    )
    lines = []
    for r in rows:
        lat = r.get("latency") or {}
        cen = r.get("census") or {}
        io = (cen.get("io") or {}).get("inputs") or [{}]
        lines.append(
            (
                r.get("mode", "?"),
                io[0].get("dtype", "float32"),
                f"{r['file_size_bytes'] / 1e6:.2f}",
                f"{100 * r['keras_top1']:.2f}",
                f"{100 * r['tflite_top1']:.2f}",
                f"{100 * r['top1_agreement']:.2f}",
                f"{r['max_abs_diff']:.2e}",
                f"{lat['median_ms']:.2f} ({lat['threads']})" if lat else "-",
                str(cen["num_float_ops"]) if cen else "-",
                str(len(r.get("denylist") or ())),
            )
        )
    widths = [
        max(len(h), *(len(l[i]) for l in lines)) if lines else len(h) for i, h in enumerate(header)
    ]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join(
        [fmt.format(*header), fmt.format(*("-" * w for w in widths))]
        + [fmt.format(*l) for l in lines]
    )
