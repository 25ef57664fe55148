"""Quantization debugging: per-layer int8 error, and float fallback search.

The per-layer report comes from TFLite's QuantizationDebugger: a debug model
with NumericVerify ops runs each quantized op next to its float twin on the
same (quantized) inputs and records the difference. Two measures per layer:
`rmse_scale`, the RMSE in units of the output's quantization step (the
metric of TFLite's debugger guide; ~0.29 is pure rounding noise), and
`noise_ratio`, the RMSE relative to the spread (std) of the float output.
Layers are ranked by `noise_ratio`: a layer whose range is set by a few
outliers has a coarse step, so its error looks like rounding noise in
`rmse_scale` while it wipes out most of the signal. (On a digits-trained B0
the top of this ranking is the squeeze-excite path (docs/export.md "int8 debugging");
by `rmse_scale` it is the SE reduce convolutions.)

`search_denylist` keeps the worst layers in float, doubling their number
until the int8 model's top-1 loss versus the float Keras model is within the
target, measured on a split other than the test split.
"""

import csv
import dataclasses
import io
import math
import warnings

import numpy as np
import tensorflow as tf

from keras_effnet import console
from keras_effnet.export import converter as convert_lib
from keras_effnet.export.verification import Score


def _noise_ratio(float_values, quantized, scale, zero_point):
    dequantized = (quantized.astype(np.float32) - zero_point) * scale
    rmse = np.sqrt(np.mean((float_values - dequantized) ** 2))
    return float(rmse / (np.std(float_values) + 1e-12))


def layer_report(calibrated, images):
    """Per-layer quantization error of an int8 model, worst first.

    Args:
        calibrated: Bytes from `convert.calibrate`.
        images: float32 (N, H, W, 3) 0..255 images to run (a few dozen suffice).

    Returns:
        A list of dicts: tensor (the node name `denylist` takes), op, scale,
        zero_point, rmse_scale, mean_error, max_abs_error, stddev.
    """
    debug_model = convert_lib.quantize_calibrated(calibrated, numeric_verify=True)
    images = np.asarray(images, np.float32)

    def dataset():
        for i in range(len(images)):
            yield [images[i : i + 1]]

    options = tf.lite.experimental.QuantizationDebugOptions(
        layer_direct_compare_metrics={"noise_ratio": _noise_ratio}
    )
    with warnings.catch_warnings(), console.native_output_filtered():
        # TFLite's debugger runs the deprecated tf.lite.Interpreter with every
        # tensor kept; both warnings are about its internals, not the user's model.
        warnings.filterwarnings("ignore", ".*tf.lite.Interpreter is deprecated")
        warnings.filterwarnings("ignore", ".*experimental_preserve_all_tensors")
        debugger = tf.lite.experimental.QuantizationDebugger(
            quant_debug_model_content=debug_model, debug_dataset=dataset, debug_options=options
        )
        debugger.run()
    buffer = io.StringIO()
    debugger.layer_statistics_dump(buffer)
    buffer.seek(0)
    rows = []
    for row in csv.DictReader(buffer):
        scale = float(row["scale"])
        mse = float(row["mean_squared_error"])
        rows.append(
            {
                "tensor": row["tensor_name"],
                "op": row["op_name"],
                "scale": scale,
                "zero_point": int(float(row["zero_point"])),
                "rmse_scale": math.sqrt(mse) / scale if scale else float("inf"),
                "mean_error": float(row["mean_error"]),
                "max_abs_error": float(row["max_abs_error"]),
                "stddev": float(row["stddev"]),
                "noise_ratio": float(row["noise_ratio"]),
            }
        )
    rows.sort(key=lambda r: -r["noise_ratio"])
    return rows


@dataclasses.dataclass(frozen=True)
class SearchStep:
    """One file the denylist search tried: how many layers were float, and its `Score`."""

    denylisted: int
    score: Score

    def to_dict(self) -> dict:
        """The report's "history" entry: denylisted plus the score's guard keys."""
        return {"denylisted": self.denylisted, **self.score.to_search_dict()}


@dataclasses.dataclass(frozen=True)
class DenylistSearch:
    """What `search_denylist` found.

    Attributes:
        tflite: The chosen file (bytes).
        denylist: Tensor names kept in float in it, worst first.
        met: Whether its drop plus standard error is within the target.
        score: Its `Score` on the search split.
        history: Every file tried, in order (`SearchStep`).
    """

    tflite: bytes
    denylist: tuple[str, ...]
    met: bool
    score: Score
    history: tuple[SearchStep, ...]


def search_denylist(
    calibrated, report, evaluate, reference_top1, max_accuracy_drop, *, io_type="uint8"
) -> DenylistSearch:
    """Keeps the worst layers in float until the top-1 loss is small enough.

    A file meets the target when its measured drop plus one standard error of
    that measurement (`verification.Score`) is at most `max_accuracy_drop`:
    on a few hundred validation images a file that disagrees with the float
    model on many of them can score the same top-1 by luck and lose points on
    any other split (docs/export.md, "The int8 guard").

    Args:
        calibrated: Bytes from `convert.calibrate`.
        report: `layer_report` rows, worst first.
        evaluate: Function .tflite bytes -> its `verification.Score` against
            the float model on a held-out split (not the test split), or just
            its top-1 in [0, 1] (no error bar).
        reference_top1: The float model's top-1 on the same split.
        max_accuracy_drop: Allowed loss in percentage points (0.5 = 0.5 pt).
        io_type: Input/output dtype of the result.

    Returns:
        A `DenylistSearch`. If no denylist meets the target, the one with the
        lowest drop plus error, with met=False.
    """
    if max_accuracy_drop < 0:
        raise ValueError(f"max_accuracy_drop: must be >= 0 points, got {max_accuracy_drop}")
    names = [r["tensor"] for r in report]
    counts, k = [0], 1
    while k < len(names):
        counts.append(k)
        k *= 2
    counts.append(len(names))
    history, best = [], None
    for count in dict.fromkeys(counts):
        denylist = tuple(names[:count])
        model = convert_lib.quantize_calibrated(calibrated, io_type, denylist=list(denylist))
        step = SearchStep(count, scored(evaluate(model), reference_top1))
        history.append(step)
        if best is None or step.score.bound_pt < best[2].score.bound_pt:
            best = (model, denylist, step)
        if step.score.bound_pt <= max_accuracy_drop:
            break
    model, denylist, step = best
    return DenylistSearch(
        tflite=model,
        denylist=denylist,
        met=step.score.bound_pt <= max_accuracy_drop,
        score=step.score,
        history=tuple(history),
    )


def scored(result, reference_top1: float) -> Score:
    """A search step's `Score` from `evaluate`'s result (a `Score`, or a top-1 in [0, 1])."""
    if isinstance(result, Score):
        return result
    return Score.from_top1(result, reference_top1)
