"""Post-training int8 of models trained with the default recipe (docs/export.md, "Why B models
lose accuracy under post-training int8").

Float vs plain int8 (every op quantized, calibration's min/max ranges) vs int8
with MSE ranges (`keras_effnet.export.ranges`) vs the file the default export
writes (the accuracy guard, `keras_effnet.export.guard.guarded_int8`),
scored on the digits validation and test splits, with the quantization
debugger's worst layers of the plain file.
"""

from keras_effnet.bench.training import train_briefly
from keras_effnet.export import converter, datasets, debug, guard, verification


def ptq_run(
    name,
    seed,
    model_dir,
    *,
    image_size=64,
    epochs=10,
    num_calibration=200,
    report_layers=8,
    **train_overrides,
):
    """Post-training int8 of a variant trained with the default recipe on digits.

    Trains `name` with `train_briefly` (the recipe users get, plus
    `train_overrides` in flag names) into `model_dir`, then measures its
    best.keras with `ptq_figures`.

    Returns:
        The `ptq_figures` dict plus model, epochs, train_seconds,
        train_accuracy and overrides.
    """
    run = train_briefly(
        name, model_dir, image_size=image_size, epochs=epochs, seed=seed, **train_overrides
    )
    row = {
        "model": name,
        "epochs": epochs,
        "train_seconds": run["wall_s"],
        "train_accuracy": run["train_accuracy"],
        "overrides": train_overrides,
    }
    row.update(
        ptq_figures(
            run["best_model_path"],
            seed,
            image_size=image_size,
            num_calibration=num_calibration,
            report_layers=report_layers,
        )
    )
    return row


def ptq_figures(
    model_path, seed, *, image_size=64, num_calibration=200, report_layers=8, max_accuracy_drop=1.0
) -> dict:
    """Float vs int8 top-1 of a digits model: plain, MSE ranges, the export's default file.

    Plain int8 quantizes every op (no float fallback) with calibration's
    min/max ranges; the MSE file narrows those ranges (`ranges.mse_ranges`,
    the default of `converter.convert`). The default file is
    what `export_tflite` writes with the accuracy guard at `max_accuracy_drop`
    points (`guard.guarded_int8`: the MSE or min/max file if its
    validation drop plus standard error is within the target, else with the
    worst layers in float). All are scored on the validation and test splits.

    Returns:
        A dict: seed, image_size, `{split}_float_top1`, `{split}_int8_top1`,
        `{split}_drop_pt`, `{split}_agreement` (plain), `{split}_mse_top1`,
        `{split}_mse_drop_pt`, `{split}_guarded_top1`, `{split}_guarded_drop_pt`
        (and `{split}_mse_agreement`, `{split}_guarded_agreement`),
        guarded_ranges, guarded_float_layers, guarded_met, and the
        `report_layers` worst layers of the quantization debugger.
    """
    model = converter.load_model(model_path)
    size = (image_size, image_size)
    calib = datasets.load_arrays(
        "digits", "train", size, limit=num_calibration, shuffle=True, seed=seed
    )[0]
    candidates = guard.int8_candidates(model, calib)
    calibrated, plain = candidates["calibrated"]["minmax"], candidates["files"]["minmax"]
    files = {"mse": candidates["files"]["mse"]}
    splits = {
        split: datasets.load_arrays("digits", split, size) for split in ("validation", "test")
    }
    guarded = guard.guarded_int8(
        model, calib, splits["validation"], max_accuracy_drop, candidates=candidates
    )
    files["guarded"] = guarded.tflite
    row = {
        "seed": seed,
        "image_size": image_size,
        "max_accuracy_drop": max_accuracy_drop,
        "guarded_ranges": guarded.ranges,
        "guarded_float_layers": len(guarded.denylist),
        "guarded_met": guarded.met,
    }
    # The guard scored the candidates and its file on validation already (same reference).
    scored = {"validation": {**guarded.candidates, "guarded": guarded.score}}
    files = {"minmax": plain, **files}
    for split, (images, labels) in splits.items():
        reference = verification.reference_fn(model)(images)
        scores = {
            name: scored.get(split, {}).get(name)
            or verification.compare(reference, verification.run_tflite(tflite, images), labels)
            for name, tflite in files.items()
        }
        plain_score = scores.pop("minmax")
        row[f"{split}_float_top1"] = plain_score.reference_top1
        row[f"{split}_int8_top1"] = plain_score.top1
        row[f"{split}_drop_pt"] = 100.0 * (plain_score.reference_top1 - plain_score.top1)
        row[f"{split}_agreement"] = plain_score.agreement
        for name, score in scores.items():
            row[f"{split}_{name}_top1"] = score.top1
            row[f"{split}_{name}_drop_pt"] = score.drop_pt
            row[f"{split}_{name}_agreement"] = score.agreement
    rows = debug.layer_report(calibrated, calib[:64])
    row["worst_layers"] = [
        {k: r[k] for k in ("tensor", "op", "noise_ratio", "rmse_scale", "scale")}
        for r in rows[:report_layers]
    ]
    return row
