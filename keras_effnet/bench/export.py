"""Export benchmark: accuracy, size and LiteRT latency of every mode.

Trains each variant briefly on digits at a small resolution
(`training.train_briefly`: the default recipe, the model users get from
`keras-effnet train`), then for every mode: accuracy against the float model at
the training resolution, and file size plus LiteRT latency (batch 1) of the
same weights converted at the variant's native resolution. EfficientNet is
fully convolutional up to global pooling, so the weights fit any input size;
the latency models are calibrated on the same digits upscaled to that size.
"""

import os
import time

import numpy as np

import keras_effnet
from keras_effnet import export_modes, io
from keras_effnet.bench.timing import interleaved_latency
from keras_effnet.bench.training import train_briefly
from keras_effnet.export import census, converter, datasets, debug, flatbuf, verification


def _build(name, size):
    """The benchmark's variant at `size`: 10 classes, no dropout or stochastic depth."""
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
        row.update(verification.compare(reference, out, test[1]).to_dict())
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
    size = calib.shape[1]
    val = datasets.load_arrays("digits", "validation", (size, size))
    ref_top1 = float(np.mean(verification.reference_fn(model)(val[0]).argmax(-1) == val[1]))
    calibrated = converter.calibrate(model, calib)
    report = debug.layer_report(calibrated, calib[:64])

    def evaluate(tflite):
        return float(np.mean(verification.run_tflite(tflite, val[0]).argmax(-1) == val[1]))

    found = debug.search_denylist(calibrated, report, evaluate, ref_top1, max_accuracy_drop)
    out = verification.run_tflite(found.tflite, test[0], threads=threads)
    row = {
        "mode": "int8+denylist",
        "denylist": list(found.denylist),
        "search": [step.to_dict() for step in found.history],
    }
    row.update(verification.compare(reference, out, test[1]).to_dict())
    # Same layers at any resolution, but the graph's model-name prefix may
    # differ: map the denylist by the tensor name after its first component.
    big_calibrated = converter.calibrate(big, big_calib)
    names = {n.split("/", 1)[-1]: n for n in _tensor_names(big_calibrated) if "/" in n}
    missing = [n for n in found.denylist if n.split("/", 1)[-1] not in names]
    if missing:
        raise ValueError(f"denylist: no tensor at {latency_size}px for {missing[:3]}")
    denylist = [names[n.split("/", 1)[-1]] for n in found.denylist]
    full = converter.quantize_calibrated(big_calibrated, "uint8", denylist=denylist)
    row["num_float_ops"] = census.op_census(full)["num_float_ops"]
    row["file_size_bytes"] = len(full)
    row["latency_size"] = latency_size
    return row, full


def _tensor_names(tflite):
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
    model_dir,
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

    Each variant trains with `train_briefly` into `model_dir`/<variant> (seed
    0); a finished run there is reused (`train` only re-evaluates it).

    Returns:
        {variant: rows}; each row has mode, keras_top1, tflite_top1,
        top1_agreement, max_abs_diff, file_size_bytes, latency, and for the
        "int8+denylist" row the denylist and search history.
    """
    results = {}
    for name in variants:
        trained = train_briefly(
            name, os.path.join(model_dir, name), image_size=train_size, epochs=epochs
        )
        model = converter.load_model(trained["best_model_path"])
        rows = benchmark_variant(
            name,
            model,
            latency_size,
            threads=threads,
            latency_runs=latency_runs,
            max_accuracy_drop=max_accuracy_drop,
        )
        for row in rows:
            row["train_seconds"] = trained["wall_s"]
            row["train_size"] = train_size
            row["recipe"] = trained["recipe"]["recipe"]
        results[name] = rows
        if output:  # Written after each variant, so a long run keeps its progress.
            io.write_json_atomic(output, results)
    return results
