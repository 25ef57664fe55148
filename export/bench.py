"""Export benchmark: accuracy, size and LiteRT latency of every mode.

Trains each variant briefly on digits at a small resolution (plain
`model.fit`; BatchNorm momentum 0.9 so the moving statistics keep up with a
short fit), then for every mode: accuracy against the float model at the
training resolution, and file size plus LiteRT latency (batch 1) of the same
weights converted at the variant's native resolution. EfficientNet is fully
convolutional up to global pooling, so the weights fit any input size; the
latency models are calibrated on the same digits upscaled to that size.
"""

import time

import keras
import numpy as np

from keras_effnet import export_modes, io, litert
from keras_effnet.export import census, converter, datasets, verification


def train_briefly(name, size, epochs, *, batch_size=32, seed=0):
    """A variant trained for `epochs` on digits at `size`; returns the model."""
    from keras_effnet import data  # pylint: disable=import-outside-toplevel

    keras.utils.set_random_seed(seed)
    model = _build(name, size)
    for layer in model._flatten_layers(include_self=False, recursive=True):  # pylint: disable=protected-access
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = 0.9
    model.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy")
    train = data.load_dataset("digits", "train", size, batch_size, shuffle=True, seed=seed)
    model.fit(train, epochs=epochs, verbose=0)
    return model


def _build(name, size):
    """The benchmark's variant: 10 classes, no dropout or stochastic depth."""
    import keras_effnet  # pylint: disable=import-outside-toplevel

    return keras_effnet.get_model(
        name,
        weights=None,
        input_shape=(size, size, 3),
        classes=10,
        dropout_rate=0.0,
        drop_connect_rate=0.0,
    )


def _resized(name, model, size):
    other = _build(name, size)
    other.set_weights(model.get_weights())
    return other


def benchmark_variant(
    name,
    model,
    latency_size,
    *,
    modes=export_modes.TFLITE_MODES,
    threads=2,
    latency_runs=50,
    num_calibration=200,
    max_accuracy_drop=None,
):
    """Rows of figures for trained variant `name` (see module doc)."""
    size = converter.input_size(model)[0]
    test = datasets.load_arrays("digits", "test", (size, size))
    calib = datasets.load_arrays(
        "digits", "train", (size, size), limit=num_calibration, shuffle=True
    )[0]
    big = _resized(name, model, latency_size)
    big_calib = datasets.load_arrays(
        "digits", "train", (latency_size,) * 2, limit=num_calibration, shuffle=True
    )[0]
    reference = verification.reference_fn(model)(test[0])
    rows, latency_models = [], {}
    for mode in modes:
        start = time.time()
        small = converter.convert(
            model, mode, calib if mode in export_modes.QUANTIZED_MODES else None
        )
        out = verification.run_tflite(small, test[0], threads=threads)
        row = {"mode": mode}
        row.update(verification.compare(reference, out, test[1]))
        full = converter.convert(
            big, mode, big_calib if mode in export_modes.QUANTIZED_MODES else None
        )
        row["file_size_bytes"] = len(full)
        row["latency_size"] = latency_size
        row["seconds"] = time.time() - start
        rows.append(row)
        latency_models[mode] = full
    if max_accuracy_drop is not None:
        row, latency_models["int8+denylist"] = _denylisted_row(
            model,
            big,
            calib,
            big_calib,
            test,
            reference,
            threads,
            max_accuracy_drop,
            latency_size,
        )
        rows.append(row)
    # Interleaved rounds: a burst of other load on a shared machine then
    # slows every mode alike instead of whichever one was being timed.
    timings = interleaved_latency(latency_models, threads=threads, runs=latency_runs)
    for row in rows:
        row["latency"] = timings[row["mode"]]
    return rows


def _denylisted_row(
    model, big, calib, big_calib, test, reference, threads, max_accuracy_drop, latency_size
):
    from keras_effnet.export import debug  # pylint: disable=import-outside-toplevel

    size = calib.shape[1]
    val = datasets.load_arrays("digits", "validation", (size, size))
    ref_top1 = float(np.mean(verification.reference_fn(model)(val[0]).argmax(-1) == val[1]))
    calibrated = converter.calibrate(model, calib)
    report = debug.layer_report(calibrated, calib[:64])

    def evaluate(tflite):
        return float(np.mean(verification.run_tflite(tflite, val[0]).argmax(-1) == val[1]))

    found = debug.search_denylist(calibrated, report, evaluate, ref_top1, max_accuracy_drop)
    out = verification.run_tflite(found["tflite"], test[0], threads=threads)
    row = {"mode": "int8+denylist", "denylist": found["denylist"], "search": found["history"]}
    row.update(verification.compare(reference, out, test[1]))
    # Same layers at any resolution, but the graph's model-name prefix may
    # differ: map the denylist by the tensor name after its first component.
    big_calibrated = converter.calibrate(big, big_calib)
    names = {n.split("/", 1)[-1]: n for n in _tensor_names(big_calibrated) if "/" in n}
    missing = [n for n in found["denylist"] if n.split("/", 1)[-1] not in names]
    if missing:
        raise ValueError(f"denylist: no tensor at {latency_size}px for {missing[:3]}")
    denylist = [names[n.split("/", 1)[-1]] for n in found["denylist"]]
    full = converter.quantize_calibrated(big_calibrated, "uint8", denylist=denylist)
    row["num_float_ops"] = census.op_census(full)["num_float_ops"]
    row["file_size_bytes"] = len(full)
    row["latency_size"] = latency_size
    return row, full


def interleaved_latency(models, *, threads=2, runs=50, rounds=10, warmup=3):
    """Median LiteRT latency (ms, batch 1) of several models, timed in turns.

    Each round times every model for `runs / rounds` invocations (after a
    pause and one untimed invoke); a model's figure is the median of its
    per-round medians.
    """
    per_round = max(1, runs // rounds)
    runners = {}
    for name, tflite in models.items():
        runner = litert.Runner(tflite, threads)
        runner.prime()
        for _ in range(warmup):
            runner.invoke()
        runners[name] = runner
    medians = {name: [] for name in models}
    for _ in range(rounds):
        for name, runner in runners.items():
            # Let the previous interpreter's worker threads stop spinning
            # (they busy-wait after each invoke and would steal the cores).
            time.sleep(0.05)
            runner.invoke()
            medians[name].append(float(np.median(runner.timed(per_round))))
    return {
        name: {
            "median_ms": float(np.median(m)),
            "min_round_ms": min(m),
            "rounds": rounds,
            "runs": per_round * rounds,
            "threads": threads,
        }
        for name, m in medians.items()
    }


def _tensor_names(tflite):
    from keras_effnet.export import flatbuf  # pylint: disable=import-outside-toplevel

    model = flatbuf.read_model(tflite)
    return [flatbuf.tensor_name(t) for t in model.subgraphs[0].tensors]


def markdown(results):
    """A markdown table of {variant: rows}."""
    lines = [
        "| variant | mode | float top-1 | tflite top-1 | loss (pt) | agreement | size MB | "
        "latency ms, median (best round) | vs fp32 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for variant, rows in results.items():
        fp32 = next((r for r in rows if r["mode"] == "fp32"), None)
        for r in rows:
            lat = r["latency"]
            ratio = ""
            if fp32:
                base = fp32["latency"]
                ratio = (
                    f"{lat['median_ms'] / base['median_ms']:.2f}x "
                    f"({lat.get('min_round_ms', lat['median_ms']) / base.get('min_round_ms', base['median_ms']):.2f}x)"
                )
            mode = r["mode"]
            if "denylist" in r:
                mode += f" ({len(r['denylist'])} layers float)"
            lines.append(
                f"| {variant} | {mode} | {100 * r['keras_top1']:.2f} | "
                f"{100 * r['tflite_top1']:.2f} | "
                f"{100 * (r['keras_top1'] - r['tflite_top1']):+.2f} | "
                f"{100 * r['top1_agreement']:.2f} | {r['file_size_bytes'] / 1e6:.2f} | "
                f"{lat['median_ms']:.2f} ({lat.get('min_round_ms', lat['median_ms']):.2f}) | "
                f"{ratio} |"
            )
    return "\n".join(lines)


def run(
    variants,
    *,
    train_size=64,
    epochs=10,
    latency_size=224,
    threads=2,
    latency_runs=50,
    max_accuracy_drop=0.5,
    output=None,
):
    """Trains and benchmarks each variant; writes {variant: rows} as JSON.

    Returns:
        {variant: rows}; each row has mode, keras_top1, tflite_top1,
        top1_agreement, max_abs_diff, file_size_bytes, latency, and for the
        "int8+denylist" row the denylist and search history.
    """

    results = {}
    for name in variants:
        start = time.time()
        model = train_briefly(name, train_size, epochs)
        train_seconds = time.time() - start
        rows = benchmark_variant(
            name,
            model,
            latency_size,
            threads=threads,
            latency_runs=latency_runs,
            max_accuracy_drop=max_accuracy_drop,
        )
        for row in rows:
            row["train_seconds"] = train_seconds
            row["train_size"] = train_size
        results[name] = rows
        if output:  # Written after each variant, so a long run keeps its progress.
            io.write_json_atomic(output, results)
    return results


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

    Trains `name` with `keras_effnet.training` (the recipe users get, plus
    `train_overrides` in flag names) into `model_dir`, then measures its
    best.keras with `ptq_figures`.

    Returns:
        The `ptq_figures` dict plus model, epochs, train_seconds,
        train_accuracy and overrides.
    """
    from keras_effnet.training import bench as train_bench  # pylint: disable=import-outside-toplevel

    run = train_bench.recipe_run(
        "digits", name, image_size, epochs, seed, model_dir, **train_overrides
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
            f"{model_dir}/best.keras",
            seed,
            image_size=image_size,
            num_calibration=num_calibration,
            report_layers=report_layers,
        )
    )
    return row


def ptq_figures(
    model_path, seed, *, image_size=64, num_calibration=200, report_layers=8, max_accuracy_drop=1.0
):
    """Float vs int8 top-1 of a digits model: plain int8 and the export's default file.

    Plain int8 quantizes every op (no float fallback). The default file is
    what `export_tflite` writes with the accuracy guard at `max_accuracy_drop`
    points (`pipeline.guarded_int8`: plain if it is within the target on
    validation, else with the worst layers in float). Both are scored on the
    validation and test splits.

    Returns:
        A dict: seed, image_size, `{split}_float_top1`, `{split}_int8_top1`,
        `{split}_drop_pt`, `{split}_agreement` (plain), `{split}_guarded_top1`,
        `{split}_guarded_drop_pt`, guarded_float_layers, guarded_met, and the
        `report_layers` worst layers of the quantization debugger.
    """
    from keras_effnet.export import (
        debug,  # pylint: disable=import-outside-toplevel
        pipeline,  # pylint: disable=import-outside-toplevel
    )

    model = converter.load_model(model_path)
    size = (image_size, image_size)
    calib = datasets.load_arrays(
        "digits", "train", size, limit=num_calibration, shuffle=True, seed=seed
    )[0]
    calibrated = converter.calibrate(model, calib)
    plain = converter.quantize_calibrated(calibrated, "uint8")
    splits = {
        split: datasets.load_arrays("digits", split, size) for split in ("validation", "test")
    }
    guarded, guard = pipeline.guarded_int8(model, calib, splits["validation"], max_accuracy_drop)
    row = {
        "seed": seed,
        "image_size": image_size,
        "max_accuracy_drop": max_accuracy_drop,
        "guarded_float_layers": len(guard["denylist"]),
        "guarded_met": guard["search"]["met"],
    }
    for split, (images, labels) in splits.items():
        reference = verification.reference_fn(model)(images)
        compared = verification.compare(reference, verification.run_tflite(plain, images), labels)
        row[f"{split}_float_top1"] = compared["keras_top1"]
        row[f"{split}_int8_top1"] = compared["tflite_top1"]
        row[f"{split}_drop_pt"] = 100.0 * (compared["keras_top1"] - compared["tflite_top1"])
        row[f"{split}_agreement"] = compared["top1_agreement"]
        top1 = verification.compare(reference, verification.run_tflite(guarded, images), labels)[
            "tflite_top1"
        ]
        row[f"{split}_guarded_top1"] = top1
        row[f"{split}_guarded_drop_pt"] = 100.0 * (compared["keras_top1"] - top1)
    rows = debug.layer_report(calibrated, calib[:64])
    row["worst_layers"] = [
        {k: r[k] for k in ("tensor", "op", "noise_ratio", "rmse_scale", "scale")}
        for r in rows[:report_layers]
    ]
    return row
