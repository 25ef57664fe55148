"""The int8 accuracy guard: score all-integer files against float, keep layers
in float when needed, refuse what still misses (docs/export.md, "The int8 guard").
"""

from keras_effnet.export import converter as convert_lib
from keras_effnet.export import debug
from keras_effnet.export import ranges as ranges_lib
from keras_effnet.export import verification as verify_lib

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
):
    """int8 checked against the float model; returns (bytes, report part).

    Two all-integer candidates come from one calibration: activation ranges
    narrowed to minimise quantization error (`ranges.mse_ranges`) and the
    calibration's min/max. Both are scored on `search_data` (held-out images,
    never test) and the one whose top-1 drop plus the standard error of that
    drop is lower is kept (`ranges`): on a few hundred images a file that
    disagrees with the float model more often can match its top-1 by luck. Only
    when that bound still exceeds `max_accuracy_drop` points does the
    quantization debugger rank the file's layers and the denylist search keep
    the worst in float (`debug.search_denylist`, same bound). The report part says
    whether that was needed (`float_fallback`, `denylist`) and whether the
    target was met (`search["met"]`); the caller decides what a miss means
    (`export_tflite` refuses to write, the study records it).

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
    """
    if candidates is None:
        candidates = int8_candidates(
            keras_model, calibration, io_type=io_type, dynamic_batch=dynamic_batch
        )
    calibrated, files = candidates["calibrated"], candidates["files"]
    range_summary = candidates["mse_ranges"]
    if max_accuracy_drop is None:
        rows = debug.layer_report(calibrated["mse"], calibration[:64])
        return files["mse"], {
            "layer_report": rows if layer_report else rows[:10],
            "denylist": [],
            "ranges": "mse",
            "mse_ranges": range_summary,
            "search": {},
        }
    images, targets = search_data
    reference = verify_lib.reference_fn(keras_model)(images)
    reference_top1 = float((reference.argmax(-1) == targets).mean())

    def evaluate(tflite):
        out = verify_lib.run_tflite(tflite, images, threads=threads)
        return verify_lib.compare(reference, out, targets)

    scores = {
        name: debug.scored(evaluate(tflite), reference_top1) for name, tflite in files.items()
    }
    # The candidate with the lowest drop plus its standard error (ties: mse):
    # the one the validation split says is closest to the float model.
    chosen = min(files, key=lambda n: (scores[n]["drop_pt"] + scores[n]["drop_se_pt"], n != "mse"))
    plain = scores[chosen]
    needs_search = plain["drop_pt"] + plain["drop_se_pt"] > max_accuracy_drop
    rows = (
        debug.layer_report(calibrated[chosen], calibration[:64])
        if needs_search or layer_report
        else []
    )
    more = {"layer_report": rows if layer_report else rows[:10]}
    if needs_search:
        found = debug.search_denylist(
            calibrated[chosen], rows, evaluate, reference_top1, max_accuracy_drop, io_type=io_type
        )
    else:
        found = {
            "tflite": files[chosen],
            "denylist": [],
            "accuracy_drop_pt": plain["drop_pt"],
            "accuracy_drop_se_pt": plain["drop_se_pt"],
            "met": True,
            "history": [{"denylisted": 0, **plain}],
        }
    more.update(
        {
            "denylist": list(found["denylist"]),
            "max_accuracy_drop": max_accuracy_drop,
            "float_fallback": bool(found["denylist"]),
            "ranges": chosen,
            "mse_ranges": range_summary,
            "search": {
                "num_examples": int(len(targets)),
                "keras_top1": reference_top1,
                "plain_top1": plain["top1"],
                "ranges_top1": {name: score["top1"] for name, score in scores.items()},
                "ranges_scores": scores,
                "plain_drop_pt": plain["drop_pt"],
                "plain_drop_se_pt": plain["drop_se_pt"],
                "accuracy_drop_pt": found["accuracy_drop_pt"],
                "accuracy_drop_se_pt": found["accuracy_drop_se_pt"],
                "met": found["met"],
                "history": found["history"],
            },
        }
    )
    return found["tflite"], more


def refusal(search, split, max_accuracy_drop):
    """The ValueError of an int8 file that misses the accuracy target (`guarded_int8`)."""
    return ValueError(
        f"int8 export refused: on the {split!r} split ({search['num_examples']} images) the int8 "
        f"file scores top-1 {search['plain_top1']:.4f} against {search['keras_top1']:.4f} for the "
        f"float model ({search['plain_drop_pt']:.1f} +- {search['plain_drop_se_pt']:.1f} pt "
        f"lost), and keeping up to {search['history'][-1]['denylisted']} of the worst layers in "
        f"float still loses {search['accuracy_drop_pt']:.1f} +- "
        f"{search['accuracy_drop_se_pt']:.1f} pt (the drop plus its standard error must be at "
        f"most {max_accuracy_drop} pt). Use --mode=qat (quantization-aware training), a "
        "Lite variant (no squeeze-excite, ReLU6: robust to int8), or --max_accuracy_drop=none "
        f"to write it anyway. Received: mode='int8', max_accuracy_drop={max_accuracy_drop}"
    )
