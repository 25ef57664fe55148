"""Measuring one study cell: one model at one setting, in a fresh process.

Order of the phases (see `memory` for why the order matters):
  1. build the model, count params/FLOPs (`keras_effnet.model_profile`);
  2. Keras inference latency at batch 1 (peak memory measured);
  3. training for the budget (epochs and/or seconds) with the recipe
     `keras-effnet train` resolves for the same data (`plan.resolve`: by
     default AdamW, cosine, EMA, auto augmentation and auto epochs; or
     `--recipe=paper`), compiled by `builders.compile_for_plan`
     (peak memory measured);
  4. test accuracy with the trained BN moving averages, then again after
     re-estimating BN statistics on training images (precise BN, as every
     run's evaluation does);
  5. per TFLite mode: convert (keras_effnet.export.convert; int8 through the
     export's accuracy guard, see `_tflite`), LiteRT latency at batch 1 on
     `threads` threads, file size and test accuracy.

Training throughput comes from phase 3 itself: the median duration of the
training steps after the first (which traces), i.e. the compiled step as
model.fit runs it with the prefetched input pipeline. No second compilation.

Run as a worker: ``python -m keras_effnet.study.measure CELL.json OUT.json``.
Progress events go to stdout as JSON lines ({"phase": ...}).
"""

import json
import os
import statistics
import sys
import time
import traceback

from keras_effnet.export_modes import QUANTIZED_MODES
from keras_effnet.io import write_bytes_atomic
from keras_effnet.study import memory, results, specs

# Where progress goes: JSON lines on stdout for the parent of a worker
# process, or a callback when the cell runs in-process (`measure_cell`).
_on_phase = None


def _emit(phase):
    if _on_phase is not None:
        _on_phase(phase)
        return
    print(json.dumps({"phase": phase, "time": time.time()}), flush=True)


def _median_images_per_s(step, timing):
    from keras_effnet.bench.timing import interleaved_throughput

    result = interleaved_throughput(
        {"step": step},
        iterations=timing["iterations"],
        repeats=timing["repeats"],
        warmup=timing["warmup"],
    )
    return result["step"]["images_per_s"]


def _arrays(dataset, limit):
    """Concatenated (images, int labels) numpy arrays of up to `limit` examples."""
    import numpy as np

    images, labels = [], []
    count = 0
    for x, y in dataset:
        images.append(x.numpy())
        y = y.numpy()
        labels.append(y.argmax(-1) if y.ndim == 2 else y)
        count += len(images[-1])
        if count >= limit:
            break
    return np.concatenate(images)[:limit], np.concatenate(labels)[:limit].astype("int32")


class _Budget:
    """Keras callback factory: step durations, first-step time, stop on budget."""

    @staticmethod
    def make(seconds, report_every=10):
        import keras

        class Budget(keras.callbacks.Callback):
            def __init__(self):
                super().__init__()
                self.step_seconds = []

            def on_train_begin(self, logs=None):
                self.last = time.perf_counter()

            def on_train_batch_end(self, batch, logs=None):
                now = time.perf_counter()
                self.step_seconds.append(now - self.last)
                self.last = now
                if len(self.step_seconds) == 1:
                    # The budget clock starts after tracing, which differs a lot
                    # between architectures and is not training work.
                    self.clock = now
                if seconds and now - self.clock >= seconds:
                    self.model.stop_training = True
                if len(self.step_seconds) % report_every == 0:
                    _emit(f"train step {len(self.step_seconds)}")

        return Budget()


def run_plan(cell, info, spec):
    """The `plan.RunPlan` `keras-effnet train` would resolve for the cell's data and settings.

    EfficientNet variants plan as themselves; other specs (compound members,
    the references) as B0, which only sets the dropout the plan records: the
    recipe, epochs, augmentation and stochastic depth depend on the data and
    the run's length alone. Progressive learning is off: a cell is one
    resolution.
    """
    from keras_effnet.training import plan
    from keras_effnet.training.config import ExperimentConfig

    named = not specs.is_compound(spec) and spec["name"] not in specs.REFERENCE_MODELS
    epochs = cell["epochs"]
    config = ExperimentConfig().replace(
        data={
            "dataset": cell["dataset"],
            "data_dir": cell["data_dir"],
            "image_size": cell["resolution"],
            "batch_size": cell["batch_size"],
            "augment": cell["augment"],
            "progressive": "off",
        },
        model={"name": spec["name"] if named else "b0"},
        optimizer={
            "recipe": cell["recipe"],
            "base_lr": cell["base_lr"],
            "label_smoothing": cell["label_smoothing"],
        },
        # Budget only (epochs 0): the schedule spans one epoch.
        run={"epochs": 1 if epochs == 0 else epochs, "seed": cell["seed"]},
    )
    return plan.resolve(config, info, 1).replace(run={"jit_compile": cell["jit_compile"]})


def _train(model, cell, run_plan):
    """The study's training: the run's recipe on the cell's model, within its budget.

    Not `keras_effnet.training.loop.train` (nor `bench.training.train_briefly`,
    which wraps it): a cell's model is a study spec (compound phi/alpha/beta/
    gamma members, ResNet-50, MobileNetV3) that a training config cannot name;
    training stops on a wall-clock budget mid-epoch; the step durations of
    this fit are the cell's training throughput; and peak memory is measured
    around this fit alone, where `train` would add per-epoch validation and
    checkpoints. The recipe, the compiled optimizer and the input stream are
    the run's (`run_plan`, `builders`).
    """
    from keras_effnet.training import builders

    batch = run_plan.global_batch_size
    builders.compile_for_plan(model, run_plan)
    train_ds = builders.make_train_stream(run_plan, run_plan.stages[-1])
    budget = _Budget.make(cell["budget_seconds"])
    start = time.perf_counter()
    history = model.fit(
        train_ds,
        epochs=run_plan.config.run.epochs if cell["epochs"] != 0 else 10**6,
        steps_per_epoch=run_plan.steps_per_epoch,
        callbacks=[budget],
        shuffle=False,
        verbose=0,
    ).history
    steps = budget.step_seconds
    steady = statistics.median(steps[1:]) if len(steps) > 1 else None
    return {
        "fit_seconds": time.perf_counter() - start,
        "train_steps": len(steps),
        "first_step_seconds": steps[0] if steps else None,
        # Last epoch, as trained (dropout on): tells "not converged in
        # the budget" apart from "overfit" when test accuracy is low.
        "train_loss": history["loss"][-1] if history.get("loss") else None,
        "train_accuracy": history["accuracy"][-1] if history.get("accuracy") else None,
        "train_images_per_s": batch / steady if steady else None,
        "train_ms_per_image": 1000.0 * steady / batch if steady else None,
    }


def _tflite(model, cell, representative, test_x, test_y, save_as=None, search=None):
    """Per-mode LiteRT figures; int8 goes through the export's accuracy guard.

    With `search` (held-out validation images and labels), int8 is the file
    `keras_effnet.export.export_tflite` would write: the better all-integer file
    (MSE or min/max activation ranges) if it loses at most
    `cell["max_accuracy_drop"]` points (default 1.0) on `search`, else with the
    worst layers kept in float. The row records whether that fallback was
    needed and whether it met the target; a miss is kept and recorded, not
    refused (the study reports what happens).
    """
    import numpy as np

    from keras_effnet import export
    from keras_effnet.export import guard

    row, errors = {}, {}
    for mode in cell["tflite_modes"]:
        _emit(f"tflite {mode}")
        try:
            needs_data = mode in QUANTIZED_MODES
            if mode == "int8" and search is not None:
                guarded = guard.guarded_int8(
                    model,
                    representative,
                    search,
                    cell.get("max_accuracy_drop", guard.DEFAULT_MAX_ACCURACY_DROP),
                    threads=cell["threads"],
                )
                flatbuffer = guarded.tflite
                row.update(
                    tflite_int8_plain_val_accuracy=guarded.plain.top1,
                    tflite_int8_float_layers=len(guarded.denylist),
                    tflite_int8_guard_met=guarded.met,
                    tflite_int8_ranges=guarded.ranges,
                )
            else:
                flatbuffer = export.convert(model, mode, representative if needs_data else None)
            timing = export.latency(
                flatbuffer, threads=cell["threads"], runs=cell["latency_runs"], warmup=10
            )
            outputs = export.run_tflite(flatbuffer, test_x, threads=cell["threads"])
        except Exception as e:  # One failing mode must not lose the cell.
            errors[mode] = f"{type(e).__name__}: {str(e)[:500]}"
            print(f"TFLite {mode} failed:\n{traceback.format_exc()}", file=sys.stderr)
            continue
        if save_as:
            path = f"{save_as}.{mode}.tflite"
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            write_bytes_atomic(path, flatbuffer)
            row[f"tflite_{mode}_file"] = os.path.basename(path)
        row[f"tflite_{mode}_ops"] = sum(export.op_census(flatbuffer)["ops"].values())
        row[f"tflite_{mode}_latency_ms"] = timing["median_ms"]
        row[f"tflite_{mode}_mib"] = len(flatbuffer) / 2**20
        row[f"tflite_{mode}_accuracy"] = float(np.mean(outputs.argmax(-1) == test_y))
    if errors:
        row["tflite_errors"] = errors
    return row


def measure_cell(cell, cell_id=None, artifacts_dir=None, on_phase=None):
    """Measures one cell (see the module docstring); returns its table row.

    Args:
        cell: dict with "model" (a `specs` spec), "dataset", "data_dir",
            "resolution", "batch_size", "epochs", "budget_seconds", "base_lr",
            "label_smoothing", "seed", "bn_images", "jit_compile",
            "tflite_modes", "threads", "latency_runs" and "timing"
            ({"iterations", "repeats", "warmup"}).
        cell_id: the cell's id (names saved artifacts).
        artifacts_dir: where to keep the .tflite files (for `timing`); None
            keeps nothing.
        on_phase: callable(phase name) for progress; None prints JSON lines
            (the worker protocol).

    Returns:
        dict with the `results.columns` fields (minus "cell_id").
    """
    global _on_phase
    previous, _on_phase = _on_phase, on_phase
    try:
        return _measure(cell, cell_id, artifacts_dir)
    finally:
        _on_phase = previous


def _measure(cell, cell_id, artifacts_dir):
    import keras

    import keras_effnet
    from keras_effnet import data
    from keras_effnet.bench.timing import InferenceStep
    from keras_effnet.training import modeling

    started, load_start = time.perf_counter(), memory.load_average()
    spec, res, batch, seed = cell["model"], cell["resolution"], cell["batch_size"], cell["seed"]
    keras.utils.set_random_seed(seed)
    info = data.dataset_info(cell["dataset"], cell["data_dir"])
    classes, train_size = info.num_classes, info.splits["train"]
    plan = run_plan(cell, info, spec)
    load = dict(data_dir=cell["data_dir"], one_hot=True, num_classes=classes)
    test_x, test_y = _arrays(
        data.load_dataset(cell["dataset"], "test", res, 64, **load), info.splits["test"]
    )
    search = None
    if info.splits.get("validation"):  # Never test: the int8 guard's held-out images.
        search = _arrays(
            data.load_dataset(cell["dataset"], "validation", res, 64, **load),
            info.splits["validation"],
        )
    calib_x, _ = _arrays(
        data.load_dataset(
            cell["dataset"], "train", res, 64, shuffle=True, reshuffle=False, seed=seed + 1, **load
        ),
        cell["bn_images"],
    )
    _emit("build")
    model = specs.build(
        spec,
        res,
        classes,
        stem_strides=plan.config.model.stem_strides,
        drop_connect_rate=plan.config.model.drop_connect_rate,
    )
    # As every run's model starts (`modeling.build_model`): a classifier at zero,
    # where one is named "predictions" (ours, ResNet-50; MobileNetV3 ends on a conv).
    modeling.zero_classifier(model)
    profile = keras_effnet.model_profile(model, per_layer=True)
    width, depth = specs.scaling_of(spec)
    row = {
        "model": specs.label(spec),
        "family": specs.family(spec),
        "phi": spec.get("phi"),
        "alpha": spec.get("alpha"),
        "beta": spec.get("beta"),
        "gamma": spec.get("gamma"),
        "width": width,
        "depth": depth,
        "resolution": res,
        "dataset": cell["dataset"],
        "classes": classes,
        "params": profile["params"],
        "macs": profile["macs"],
        "flops": profile["flops"],
        "graph_layers": len(profile["layers"]),
        "batch_size": batch,
        "recipe": plan.config.optimizer.recipe,
        "augment": plan.config.data.augment,
        "stem_strides": plan.config.model.stem_strides if specs.plan_applies(spec) else None,
        "epochs": cell["epochs"] if cell["epochs"] == 0 else plan.config.run.epochs,
        "budget_seconds": cell["budget_seconds"],
        "seed": seed,
        "rss_base_mib": memory.rss_mib(),
        "load_avg_start": load_start,
    }
    _emit("keras latency")
    with memory.PeakMemory() as mem:
        ips = _median_images_per_s(
            InferenceStep(model, 1, jit_compile=cell["jit_compile"]), cell["timing"]
        )
    row.update(
        keras_latency_ms=1000.0 / ips, infer_peak_delta_mib=mem.delta_mib, memory_method=mem.method
    )

    _emit("train")
    keras.utils.set_random_seed(seed)
    with memory.PeakMemory() as mem:
        row.update(_train(model, cell, plan))
    row["train_peak_delta_mib"] = mem.delta_mib
    row["train_epochs_done"] = row["train_steps"] * batch / train_size
    row.update(fit_images_per_s=row["train_images_per_s"], timing_method="per-cell")

    _emit("evaluate")
    row["accuracy_bn_ema"] = _accuracy(model, test_x, test_y)
    if cell["bn_images"]:
        from keras_effnet.training.modeling import recalibrate_batch_norm

        recalibrate_batch_norm(model, (calib_x[i : i + 64] for i in range(0, len(calib_x), 64)))
    row["accuracy"] = _accuracy(model, test_x, test_y)

    save_as = os.path.join(artifacts_dir, cell_id) if artifacts_dir and cell_id else None
    row.update(_tflite(model, cell, calib_x, test_x, test_y, save_as, search))

    row.update(
        load_avg_end=memory.load_average(),
        cell_seconds=time.perf_counter() - started,
        finished_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    )
    return row


def _accuracy(model, images, labels, batch_size=64):
    """Top-1 of `model` (training=False); one trace for every batch size."""
    import numpy as np
    import tensorflow as tf

    forward = tf.function(
        lambda x: model(x, training=False),
        input_signature=[tf.TensorSpec((None,) + tuple(images.shape[1:]), tf.float32)],
    )
    predictions = [
        forward(images[i : i + batch_size]).numpy().argmax(-1)
        for i in range(0, len(images), batch_size)
    ]
    return float(np.mean(np.concatenate(predictions) == labels))


def _measure_job(job):
    row = measure_cell(job["cell"], job["id"], job.get("artifacts_dir"))
    return {"row": {"cell_id": job["id"], **row}}


def main(argv=None):
    """Worker entry: measures the cell in argv[0] (JSON), writes argv[1] (JSON)."""
    return results.run_worker("keras_effnet.study.measure", _measure_job, argv)


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    results.exit_worker(main())
