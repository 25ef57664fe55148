"""Float vs post-training int8 vs QAT int8 on the same models and test data.

Library half of scripts/bench_qat.py. For each variant: train (or reuse) a
float model on a dataset at a small resolution with `training.train_briefly`
(the default recipe), then measure on the test split the float Keras top-1,
and for the fp32, PTQ int8 and QAT int8 .tflite files their top-1, size, gzip
size and LiteRT latency.
"""

import json
import os
import time

import numpy as np

from keras_effnet import io
from keras_effnet.bench.training import train_briefly
from keras_effnet.export import converter, datasets, verification
from keras_effnet.export.options import ExportOptions
from keras_effnet.export.quant import prune as prune_lib
from keras_effnet.export.quant import qat


def _tflite_row(name, tflite, images, labels, threads, latency_runs):
    out = verification.run_tflite(tflite, images, threads=threads)
    lat = verification.latency(tflite, threads=threads, runs=latency_runs)
    return {
        "model": name,
        "top1": float(np.mean(out.argmax(-1) == labels)),
        "size_bytes": len(tflite),
        "gzip_bytes": prune_lib.gzip_size(tflite),
        "latency_ms": lat["median_ms"],
    }, out


def bench_variant(
    variant, image_size, model_dir, options: ExportOptions | None = None, *, train_epochs=30
) -> dict:
    """All figures for one variant; trains the float model unless `model_dir` has it.

    The float model is `train_briefly`'s best.keras in
    `model_dir`/<variant>_<image_size>; a finished run there is reused.

    Args:
      variant, image_size: The model and its training and export resolution.
      model_dir: Where the training runs go.
      options: `ExportOptions` (None = defaults): `dataset` (None = "digits")
        for training and testing; `num_calibration`, `threads`, `latency_runs`
        for the PTQ files and all timings; `qat_epochs`, `learning_rate`,
        `seed` (also the float training's) and the rest for QAT
        (`qat.quantization_aware_training`).
      train_epochs: Float training epochs.

    Returns:
      A JSON-ready dict with "float_top1" and rows for fp32 / ptq_int8 /
      qat_int8 (top1, size, gzip size, latency), plus QAT-vs-TFLite agreement.
    """
    options = options or ExportOptions()
    dataset = options.dataset or "digits"
    threads, latency_runs, seed = options.threads, options.latency_runs, options.seed
    trained = train_briefly(
        variant,
        os.path.join(model_dir, f"{variant}_{image_size}"),
        dataset=dataset,
        image_size=image_size,
        epochs=train_epochs,
        seed=seed,
    )
    model = io.load_model(trained["best_model_path"])
    size = (image_size, image_size)
    images, labels = datasets.load_arrays(dataset, "test", size)
    calibration, _ = datasets.load_arrays(
        dataset, "train", size, limit=options.num_calibration, shuffle=True
    )
    float_out = model.predict(images, batch_size=64, verbose=0)
    result = {
        "variant": variant,
        "image_size": image_size,
        "dataset": dataset,
        "num_test": int(len(labels)),
        "float_top1": float(np.mean(float_out.argmax(-1) == labels)),
        "train_seconds": trained["wall_s"],
        "recipe": trained["recipe"]["recipe"],
        "rows": [],
    }
    for mode in ("fp32", "int8"):
        tflite = converter.convert(model, mode, calibration if mode == "int8" else None)
        row, _ = _tflite_row(
            "ptq_int8" if mode == "int8" else "fp32", tflite, images, labels, threads, latency_runs
        )
        result["rows"].append(row)
    start = time.time()
    qat_result = qat.quantization_aware_training(model, dataset, options)
    qat_s = time.time() - start
    row, out = _tflite_row("qat_int8", qat_result.tflite, images, labels, threads, latency_runs)
    keras_qat = qat.predict_fn(qat_result.qat_model, io=qat_result.census["io"]["inputs"][0])(
        images
    )
    row.update(
        {
            "qat_keras_top1": float(np.mean(keras_qat.argmax(-1) == labels)),
            "agreement_with_qat_keras": float(np.mean(keras_qat.argmax(-1) == out.argmax(-1))),
            "qat_seconds": qat_s,
            "qat_epochs": options.qat_epochs,
            "ops": qat_result.census["ops"],
        }
    )
    result["rows"].append(row)
    return result


def format_results(results):
    """A markdown table of `bench_variant` results."""
    lines = [
        "| variant | res | model | top-1 % | Δ vs float (pt) | size MB | gzip MB | latency ms |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for res in results:
        lines.append(
            f"| {res['variant']} | {res['image_size']} | float Keras "
            f"| {100 * res['float_top1']:.2f} | – | – | – | – |"
        )
        for row in res["rows"]:
            delta = 100 * (row["top1"] - res["float_top1"])
            lines.append(
                f"| {res['variant']} | {res['image_size']} | {row['model']} | "
                f"{100 * row['top1']:.2f} | {delta:+.2f} | "
                f"{row['size_bytes'] / 1e6:.2f} | {row['gzip_bytes'] / 1e6:.2f}"
                f" | {row['latency_ms']:.2f} |"
            )
    return "\n".join(lines)


def run(
    variants,
    image_size,
    model_dir,
    options: ExportOptions | None = None,
    *,
    train_epochs=30,
    output_json=None,
) -> list:
    """Benchmarks `variants` (`bench_variant`); prints and optionally writes JSON atomically."""
    results = []
    for variant in variants:
        results.append(
            bench_variant(variant, image_size, model_dir, options, train_epochs=train_epochs)
        )
        print(format_results(results[-1:]), flush=True)
    if output_json:
        io.write_json_atomic(output_json, results)
    print(format_results(results))
    print(json.dumps([{k: v for k, v in r.items() if k != "rows"} for r in results]))
    return results
