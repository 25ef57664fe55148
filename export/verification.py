"""Checks an exported model against the float Keras model on held-out data.

Figures: top-1 of both, their top-1 agreement, max/mean |output difference|
(quantized outputs are dequantized first), file size, LiteRT latency (median
ms at batch 1 on N threads) and the op/dtype census. The accuracy figures are a
`Score`, a checked file a `Verification`; their `to_dict()` give the report's keys.
"""

import dataclasses
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


@dataclasses.dataclass(frozen=True)
class Score:
    """Top-1 figures of a candidate model against its reference on one split.

    Attributes:
        top1: The candidate's top-1 accuracy in [0, 1].
        reference_top1: The reference's (float model's) top-1 on the same images.
        drop_pt: `reference_top1` minus `top1`, in points.
        drop_se_pt: The standard error of `drop_pt` as a paired estimate (per
            image: +1 lost, -1 gained, 0 same outcome), which only the images
            where the two disagree feed: with 7 % disagreement on 270 images
            the drop is known to about +-1.6 pt, with 1.5 % to about +-0.7 pt
            (docs/export.md, "The int8 guard"). 0.0 when only top-1 is known.
        agreement: Fraction of images where the two agree on top-1 (None when
            only the candidate's top-1 is known, `from_top1`).
        num_examples: Images scored (None with `from_top1`).
        max_abs_diff, mean_abs_diff: |output difference| (None with `from_top1`).
    """

    top1: float
    reference_top1: float
    drop_pt: float
    drop_se_pt: float = 0.0
    agreement: float | None = None
    num_examples: int | None = None
    max_abs_diff: float | None = None
    mean_abs_diff: float | None = None

    @classmethod
    def from_outputs(cls, reference_out, candidate_out, labels) -> "Score":
        """The score of `candidate_out` against `reference_out` (N, classes) on `labels`."""
        ref_top = reference_out.argmax(-1)
        cand_top = candidate_out.argmax(-1)
        diff = np.abs(reference_out - candidate_out)
        per_image = (ref_top == labels).astype(np.float64) - (cand_top == labels)
        n = len(labels)
        se = float(per_image.std(ddof=1) / np.sqrt(n)) if n > 1 else 0.0
        return cls(
            top1=float(np.mean(cand_top == labels)),
            reference_top1=float(np.mean(ref_top == labels)),
            drop_pt=100.0 * float(per_image.mean()),
            drop_se_pt=100.0 * se,
            agreement=float(np.mean(ref_top == cand_top)),
            num_examples=int(n),
            max_abs_diff=float(diff.max()),
            mean_abs_diff=float(diff.mean()),
        )

    @classmethod
    def from_top1(cls, top1: float, reference_top1: float) -> "Score":
        """A score known by its top-1 only (no error bar, no agreement)."""
        top1 = float(top1)
        return cls(
            top1=top1, reference_top1=reference_top1, drop_pt=100.0 * (reference_top1 - top1)
        )

    @property
    def bound_pt(self) -> float:
        """The drop plus its standard error: what the int8 guard holds to its target."""
        return self.drop_pt + self.drop_se_pt

    def to_dict(self) -> dict:
        """The verification report's keys (`<output>.verify.json`, docs/export.md)."""
        return {
            "num_examples": self.num_examples,
            "keras_top1": self.reference_top1,
            "tflite_top1": self.top1,
            "top1_agreement": self.agreement,
            "top1_drop_pt": self.drop_pt,
            "top1_drop_se_pt": self.drop_se_pt,
            "max_abs_diff": self.max_abs_diff,
            "mean_abs_diff": self.mean_abs_diff,
        }

    def to_search_dict(self) -> dict:
        """The int8 guard's keys for a scored file (its "history" and "ranges_scores")."""
        figures = {"top1": self.top1, "drop_pt": self.drop_pt, "drop_se_pt": self.drop_se_pt}
        if self.agreement is not None:
            figures["agreement"] = self.agreement
        return figures


@dataclasses.dataclass(frozen=True)
class Verification:
    """An exported file checked against its reference (`verify`, `verify_savedmodel`).

    Attributes:
        score: Its `Score` against the reference.
        file_size_bytes: Size of the file (or the SavedModel directory).
        split: The held-out split it was scored on.
        latency: `latency` figures, or None (SavedModel, or no timed runs).
        census: `census.op_census` of the file, or None (SavedModel).
    """

    score: Score
    file_size_bytes: int
    split: str
    latency: dict | None = None
    census: dict | None = None

    def to_dict(self) -> dict:
        """The verification report's keys: file_size_bytes, split, the score's, latency, census."""
        return {
            "file_size_bytes": self.file_size_bytes,
            "split": self.split,
            **self.score.to_dict(),
            "latency": self.latency,
            "census": self.census,
        }


def compare(reference_out, candidate_out, labels) -> Score:
    """Top-1 of both, their agreement, the top-1 drop with its error, output differences.

    See `Score` (`Score.from_outputs`).
    """
    return Score.from_outputs(reference_out, candidate_out, labels)


def verify(
    tflite,
    reference,
    dataset,
    *,
    threads: int = 2,
    split: str = "test",
    limit: int | None = None,
    data_dir: str | None = None,
    latency_runs: int = 50,
) -> Verification:
    """Verifies a .tflite against the float reference on a held-out split of `dataset`.

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

    Returns:
        A `Verification` (`to_dict()` for the JSON report).
    """
    data = litert.read_flatbuffer(tflite)
    census = census_lib.op_census(data)
    height, width = census["io"]["inputs"][0]["shape"][1:3]
    images, labels = datasets.load_arrays(
        dataset, split, (height, width), limit=limit, data_dir=data_dir
    )
    return verify_arrays(
        data,
        reference,
        images,
        labels,
        threads=threads,
        split=split,
        latency_runs=latency_runs,
        census=census,
    )


def verify_arrays(
    tflite,
    reference,
    images,
    labels,
    *,
    threads: int = 2,
    split: str = "test",
    latency_runs: int = 50,
    census: dict | None = None,
) -> Verification:
    """Verifies a .tflite against the float reference on pre-loaded held-out arrays.

    Args:
        tflite: .tflite bytes or path.
        reference: As for `verify`.
        images, labels: float32 (N, H, W, 3) 0..255 images and their int labels.
        threads, latency_runs: As for `verify`.
        split: The split the arrays come from (recorded).
        census: `census.op_census` of this file when the caller has it (one
            census per file), else None to take it here.

    Returns:
        A `Verification`.
    """
    data = litert.read_flatbuffer(tflite)
    if census is None:
        census = census_lib.op_census(data)
    ref_out = reference_fn(reference)(images)
    runner = litert.Runner(data, threads)
    out = runner(images)
    return Verification(
        score=compare(ref_out, out, labels),
        file_size_bytes=len(data),
        split=split,
        latency=runner.latency(runs=latency_runs) if latency_runs else None,
        census=census,
    )


def verify_savedmodel(
    path, reference, dataset, *, split="test", limit=None, data_dir=None
) -> Verification:
    """Like `verify` for a SavedModel directory (serving signature)."""
    _, _, (_, tensor_spec) = _serving_input(path)
    images, labels = datasets.load_arrays(
        dataset, split, tuple(tensor_spec.shape[1:3]), limit=limit, data_dir=data_dir
    )
    return verify_savedmodel_arrays(path, reference, images, labels, split=split)


def verify_savedmodel_arrays(path, reference, images, labels, *, split="test") -> Verification:
    """Like `verify_arrays` for a SavedModel directory (serving signature)."""
    loaded, serve, (name, tensor_spec) = _serving_input(path)  # `loaded` outlives `serve`.
    batch = tensor_spec.shape[0]
    step = 64 if batch is None else int(batch)
    outs = []
    for i in range(0, len(images), step):
        result = serve(**{name: tf.constant(images[i : i + step])})
        outs.append(next(iter(result.values())).numpy())
    del loaded
    size = sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files)
    score = compare(
        reference_fn(reference)(images), np.concatenate(outs).astype(np.float32), labels
    )
    return Verification(score=score, file_size_bytes=size, split=split)


def _serving_input(path):
    """(loaded SavedModel, serving function, (input name, input TensorSpec)) of `path`."""
    loaded = tf.saved_model.load(os.fspath(path))
    serve = loaded.signatures["serving_default"]
    spec = serve.structured_input_signature[1]
    return loaded, serve, next(iter(spec.items()))


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
