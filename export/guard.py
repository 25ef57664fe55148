"""The int8 accuracy guard: score all-integer files against float, keep layers
in float when needed, refuse what still misses (docs/export.md, "The int8 guard").
"""

import dataclasses

from keras_effnet.export import converter as convert_lib
from keras_effnet.export import debug
from keras_effnet.export import ranges as ranges_lib
from keras_effnet.export import verification as verify_lib
from keras_effnet.export.verification import Score

# int8 files may lose at most this many top-1 points on validation (issue: int8 collapse).
DEFAULT_MAX_ACCURACY_DROP = 1.0
# Fewer validation images than this and the guard's verdict means nothing (issue 20: a file
# judged on 3 images passed and lost 16.7 points on test; one image is 33 points there).
MIN_GUARD_IMAGES = 100


def check_search_size(num_images, split, min_images):
    """Refuses a guard verdict on fewer than `min_images` images (the user may lower it)."""
    if num_images < min_images:
        raise ValueError(
            f"int8 export refused: the guard would judge the file on {num_images} {split!r} "
            f"images, fewer than {min_images}: one image is {100 / max(num_images, 1):.1f} points, "
            "so its verdict means nothing. Give the dataset more validation images, pass "
            f"--min_guard_images={num_images} to accept it, or --max_accuracy_drop=none to skip "
            f"the guard. Received: min_guard_images={min_images}"
        )


def int8_candidates(keras_model, calibration, *, io_type="uint8", dynamic_batch=False):
    """The two all-integer int8 files of one calibration, before any check.

    Returns:
        A dict: `calibrated` and `files`, each {"mse": bytes, "minmax": bytes}
        (the calibrated float models and their quantized files; "mse" has
        `ranges.mse_ranges`, "minmax" calibration's own ranges), and
        `mse_ranges` (that function's summary).
    """
    calibrated = {
        "minmax": convert_lib.calibrate(keras_model, calibration, dynamic_batch=dynamic_batch)
    }
    calibrated["mse"], range_summary = ranges_lib.mse_ranges(calibrated["minmax"], calibration)
    return {
        "calibrated": calibrated,
        "files": {
            name: convert_lib.quantize_calibrated(c, io_type) for name, c in calibrated.items()
        },
        "mse_ranges": range_summary,
    }


@dataclasses.dataclass(frozen=True)
class GuardResult:
    """The int8 guard's verdict (`guarded_int8`); `to_dict()` is the report's part.

    Attributes:
        tflite: The chosen file (bytes).
        ranges: Activation ranges of the all-integer file it starts from: "mse"
            or "minmax".
        mse_ranges: `ranges.mse_ranges`' summary.
        layer_report: Quantization debugger rows in the report (all with
            `layer_report=True`, else the worst 10 when the debugger ran).
        max_accuracy_drop: The target in points, or None (guard off: no score).
        denylist: Tensor names kept in float, worst first (empty: all-integer).
        candidates: Each all-integer candidate's `Score` on the search split
            ({"mse": ..., "minmax": ...}; empty with the guard off).
        score: The chosen file's `Score` on the search split (None: guard off).
        met: Whether `score`'s drop plus standard error is within the target.
        history: The files tried (`debug.SearchStep`), the all-integer one first.
        split: The search split's name when the caller gave it (the report's
            "search"."split").
    """

    tflite: bytes
    ranges: str
    mse_ranges: dict
    layer_report: tuple = ()
    max_accuracy_drop: float | None = None
    denylist: tuple[str, ...] = ()
    candidates: dict = dataclasses.field(default_factory=dict)
    score: Score | None = None
    met: bool = True
    history: tuple[debug.SearchStep, ...] = ()
    split: str | None = None

    @property
    def plain(self) -> Score | None:
        """The all-integer file's `Score` (the candidate `ranges` names)."""
        return self.candidates.get(self.ranges)

    @property
    def float_fallback(self) -> bool:
        """Whether layers were kept in float."""
        return bool(self.denylist)

    def to_dict(self) -> dict:
        """The verification report's guard entries (keys as docs/export.md describes them)."""
        part = {"layer_report": list(self.layer_report), "denylist": list(self.denylist)}
        if self.max_accuracy_drop is None:
            part.update({"ranges": self.ranges, "mse_ranges": self.mse_ranges, "search": {}})
            return part
        plain = self.plain
        search = {
            "num_examples": plain.num_examples,
            "keras_top1": plain.reference_top1,
            "plain_top1": plain.top1,
            "ranges_top1": {name: score.top1 for name, score in self.candidates.items()},
            "ranges_scores": {
                name: score.to_search_dict() for name, score in self.candidates.items()
            },
            "plain_drop_pt": plain.drop_pt,
            "plain_drop_se_pt": plain.drop_se_pt,
            "accuracy_drop_pt": self.score.drop_pt,
            "accuracy_drop_se_pt": self.score.drop_se_pt,
            "met": self.met,
            "history": [step.to_dict() for step in self.history],
        }
        if self.split is not None:
            search["split"] = self.split
        part.update(
            {
                "max_accuracy_drop": self.max_accuracy_drop,
                "float_fallback": self.float_fallback,
                "ranges": self.ranges,
                "mse_ranges": self.mse_ranges,
                "search": search,
            }
        )
        return part


def guarded_int8(
    keras_model,
    calibration,
    search_data,
    max_accuracy_drop,
    *,
    io_type="uint8",
    dynamic_batch=False,
    layer_report=False,
    threads=2,
    candidates=None,
    split=None,
) -> GuardResult:
    """int8 checked against the float model.

    Two all-integer candidates come from one calibration: activation ranges
    narrowed to minimise quantization error (`ranges.mse_ranges`) and the
    calibration's min/max. Both are scored on `search_data` (held-out images,
    never test) and the one whose top-1 drop plus the standard error of that
    drop is lower is kept (`ranges`): on a few hundred images a file that
    disagrees with the float model more often can match its top-1 by luck. Only
    when that bound still exceeds `max_accuracy_drop` points does the
    quantization debugger rank the file's layers and the denylist search keep
    the worst in float (`debug.search_denylist`, same bound). The result says
    whether that was needed (`denylist`) and whether the target was met
    (`met`); the caller decides what a miss means (`export_tflite` refuses to
    write, the study records it).

    Args:
        keras_model: The float reference.
        calibration: float32 (N, H, W, 3) 0..255 representative images.
        search_data: (images, labels) to score on, or None with
            `max_accuracy_drop=None` (int8 with MSE ranges, no check).
        max_accuracy_drop: Largest allowed top-1 loss in points (measured
            drop plus its standard error), or None.
        io_type, dynamic_batch: As for `converter.convert`.
        layer_report: Put the whole per-layer report in the result (else the
            worst 10 rows, when the debugger ran).
        threads: LiteRT threads for scoring.
        candidates: `int8_candidates(keras_model, calibration, ...)` already
            made with the same `io_type` (the PTQ benchmark scores them too),
            or None to make them here.
        split: The name of `search_data`'s split, for the report (or None).

    Returns:
        A `GuardResult`.
    """
    if candidates is None:
        candidates = int8_candidates(
            keras_model, calibration, io_type=io_type, dynamic_batch=dynamic_batch
        )
    calibrated, files = candidates["calibrated"], candidates["files"]
    range_summary = candidates["mse_ranges"]
    if max_accuracy_drop is None:
        rows = debug.layer_report(calibrated["mse"], calibration[:64])
        return GuardResult(
            tflite=files["mse"],
            ranges="mse",
            mse_ranges=range_summary,
            layer_report=tuple(rows if layer_report else rows[:10]),
        )
    images, targets = search_data
    reference = verify_lib.reference_fn(keras_model)(images)

    def evaluate(tflite):
        out = verify_lib.run_tflite(tflite, images, threads=threads)
        return verify_lib.compare(reference, out, targets)

    scores = {name: evaluate(tflite) for name, tflite in files.items()}
    # The candidate with the lowest drop plus its standard error (ties: mse):
    # the one the validation split says is closest to the float model.
    chosen = min(files, key=lambda n: (scores[n].bound_pt, n != "mse"))
    plain = scores[chosen]
    needs_search = plain.bound_pt > max_accuracy_drop
    rows = (
        debug.layer_report(calibrated[chosen], calibration[:64])
        if needs_search or layer_report
        else []
    )
    if needs_search:
        found = debug.search_denylist(
            calibrated[chosen],
            rows,
            evaluate,
            plain.reference_top1,
            max_accuracy_drop,
            io_type=io_type,
        )
    else:
        found = debug.DenylistSearch(
            tflite=files[chosen],
            denylist=(),
            met=True,
            score=plain,
            history=(debug.SearchStep(0, plain),),
        )
    return GuardResult(
        tflite=found.tflite,
        ranges=chosen,
        mse_ranges=range_summary,
        layer_report=tuple(rows if layer_report else rows[:10]),
        max_accuracy_drop=max_accuracy_drop,
        denylist=tuple(found.denylist),
        candidates=scores,
        score=found.score,
        met=found.met,
        history=found.history,
        split=split,
    )


def refusal(result: GuardResult) -> ValueError:
    """The ValueError of an int8 file that misses the accuracy target (`guarded_int8`)."""
    plain, score, limit = result.plain, result.score, result.max_accuracy_drop
    return ValueError(
        f"int8 export refused: on the {result.split!r} split ({plain.num_examples} images) the "
        f"int8 file scores top-1 {plain.top1:.4f} against {plain.reference_top1:.4f} for the "
        f"float model ({plain.drop_pt:.1f} +- {plain.drop_se_pt:.1f} pt "
        f"lost), and keeping up to {result.history[-1].denylisted} of the worst layers in "
        f"float still loses {score.drop_pt:.1f} +- "
        f"{score.drop_se_pt:.1f} pt (the drop plus its standard error must be at "
        f"most {limit} pt). Use --mode=qat (quantization-aware training), a "
        "Lite variant (no squeeze-excite, ReLU6: robust to int8), or --max_accuracy_drop=none "
        f"to write it anyway. Received: mode='int8', max_accuracy_drop={limit}"
    )
