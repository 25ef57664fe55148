"""Activation ranges that minimise int8 error, in place of calibration's min/max.

The converter's calibration records each activation tensor's min and max over
the representative images, and int8 spreads 256 steps over that range. In the
B variants a few outliers set many of those ranges (the squeeze-excite path,
the residual stream after many additions), so the step is coarse where nearly
all values lie, and int8 B0-B3 trained on digits lose 4-6 points of top-1
(docs/export.md, "Why B models lose accuracy under post-training int8").

`mse_ranges` runs the calibrated (still float) model on the calibration
images, samples each activation tensor's values, and for each tensor shrinks
[min, max] by the ratio that minimises the mean squared error of uint8
quantization over the samples (the clipping / rounding trade-off; ratio 1 keeps
min/max). Only recorded ranges change; weights and the float graph do not.
"""

import numpy as np

from keras_effnet import litert
from keras_effnet.export import flatbuf

RANGES = ("mse", "minmax")  # `converter.convert(ranges=...)`; "mse" is the default.

# Ratios tried, in steps of 0.025. Below 0.5 the MSE over the samples still
# falls for some tensors, but end-to-end top-1 of B1/B2 trained on digits got
# worse by 1-2 points (rare large values, e.g. of squeeze-excite gate logits,
# matter more than their share of the squared error; docs/export.md, "Why B models lose
# accuracy under post-training int8").
RATIOS = np.linspace(0.5, 1.0, 21)


def quantization_mse(values, low, high, levels=256):
    """Mean squared error of `values` stored with `levels` steps over [low, high]."""
    scale = (high - low) / (levels - 1)
    if scale <= 0:  # [0, 0]: every value is stored as 0.
        return float(np.mean(np.square(values)))
    zero = np.round(-low / scale)
    q = np.clip(np.round(values / scale) + zero, 0, levels - 1)
    return float(np.mean(np.square((q - zero) * scale - values)))


def best_ratio(values, low, high, ratios=RATIOS):
    """The ratio r in `ratios` for which [r*low, r*high] quantizes `values` best.

    `low` <= 0 <= `high` (zero stays exactly representable, as TFLite needs).
    Ties keep the widest range.
    """
    values = np.asarray(values, np.float64).ravel()
    errors = [quantization_mse(values, r * low, r * high) for r in ratios]
    best = min(errors)
    return float(max(r for r, e in zip(ratios, errors) if e <= best))


def _activation_tensors(model):
    """Indices of per-tensor-calibrated activation tensors (not inputs, not constants)."""
    graph = model.subgraphs[0]
    inputs = set(graph.inputs)
    found = []
    for index, tensor in enumerate(graph.tensors):
        q = tensor.quantization
        if q is None or q.min is None or q.max is None or len(q.min) != 1 or index in inputs:
            continue
        data = model.buffers[tensor.buffer].data if tensor.buffer is not None else None
        if data is not None and len(data):
            continue
        found.append(index)
    return found


def _samples(calibrated, images, tensors, max_samples, batch_size, seed):
    """Up to `max_samples` values of each tensor in `tensors`, over all `images`."""
    runner = litert.Runner(calibrated, threads=2, argument="calibrated", preserve_all_tensors=True)
    rng = np.random.default_rng(seed)
    values = {i: [] for i in tensors}
    for count in runner.run_batches(images, batch_size):
        per_call = max(1, max_samples * count // len(images))
        for i in tensors:
            v = runner.tensor(i).ravel()
            values[i].append(v if v.size <= per_call else rng.choice(v, per_call, replace=False))
    return {i: np.concatenate(v) for i, v in values.items() if v}


def mse_ranges(calibrated, images, *, max_samples=50_000, batch_size=20, seed=0):
    """A calibrated model whose activation ranges minimise uint8 quantization error.

    Args:
        calibrated: Bytes from `converter.calibrate` (float, with min/max).
        images: float32 (N, H, W, 3) 0..255 images, normally the calibration
            images themselves (never the test split).
        max_samples: Values sampled per tensor over all images.
        batch_size: Images per invocation.
        seed: Sampling seed (the result is deterministic for a seed).

    Returns:
        (bytes for `converter.quantize_calibrated`, summary dict: tensors,
        narrowed, median_ratio, min_ratio).
    """
    images = np.asarray(images, np.float32)
    if images.ndim != 4 or not len(images):
        raise ValueError(
            f"images: expected a non-empty (N, H, W, 3) batch, got shape {images.shape}"
        )
    model = flatbuf.read_model(calibrated)
    tensors = _activation_tensors(model)
    samples = _samples(calibrated, images, tensors, max_samples, batch_size, seed)
    graph = model.subgraphs[0]
    ratios = []
    for index, values in samples.items():
        q = graph.tensors[index].quantization
        low, high = min(float(q.min[0]), 0.0), max(float(q.max[0]), 0.0)
        ratio = best_ratio(values, low, high)
        ratios.append(ratio)
        q.min, q.max = [ratio * low], [ratio * high]
    summary = {
        "tensors": len(ratios),
        "narrowed": int(sum(r < 1.0 for r in ratios)),
        "median_ratio": float(np.median(ratios)) if ratios else 1.0,
        "min_ratio": float(min(ratios)) if ratios else 1.0,
    }
    return flatbuf.write_model(model), summary
