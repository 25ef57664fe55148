"""Training benchmarks: the recipe against a naive baseline on real data,
progressive learning on and off (wall time to a validation accuracy), and
throughput (input pipeline vs bare model step, precision and XLA switches).

The bare step trains on one real batch repeated from memory
(`Dataset.from_tensors(batch).repeat()`), so it measures the model alone; the
end-to-end figure trains the same compiled model on the real training pipeline
(decode, augmentation, batching, one-hot, prefetch). A ratio near 1 means the
input pipeline is not the bottleneck.
"""

import io as _io
import json
import time

import keras
import tensorflow as tf

from keras_effnet import data
from keras_effnet.training import builders, loop
from keras_effnet.training import config as config_lib
from keras_effnet.training.strategy import make_strategy, precision_policy


class _BatchTimer(keras.callbacks.Callback):
    """Wall time from the start of batch `skip` to the end of the last batch."""

    def __init__(self, skip):
        super().__init__()
        self.skip = skip
        self.start = self.end = None
        self.batches = 0

    def on_train_batch_begin(self, batch, logs=None):
        if batch == self.skip:
            self.start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        if batch >= self.skip:
            self.end = time.perf_counter()
            self.batches = batch - self.skip + 1


def _images_per_sec(model, dataset, steps, skip, global_batch):
    timer = _BatchTimer(skip)
    model.fit(dataset, epochs=1, steps_per_epoch=steps, callbacks=[timer], verbose=0, shuffle=False)
    return timer.batches * global_batch / (timer.end - timer.start)


def _setup(config):
    strategy = make_strategy(config.run.strategy)
    info = data.dataset_info(config.data.dataset, config.data.data_dir)
    config, derived = loop.resolve(config, info, strategy.num_replicas_in_sync)
    return strategy, info, config, derived


def _model(config, derived, info, strategy):
    with strategy.scope():
        return builders.build_training_model(config, derived, info, config.data.image_size)


def benchmark_input_pipeline(config, steps=40, skip=5, repeats=2):
    """End-to-end train throughput vs the bare model step, same model and batch.

    Args:
        config: an `ExperimentConfig` (model_dir unused).
        steps: steps per measurement (the first `skip` are not timed).
        repeats: measurements per mode; the best is kept (less noise from
            other processes on a shared machine).

    Returns:
        A dict: bare_images_per_sec, end_to_end_images_per_sec, ratio,
        pipeline_only_images_per_sec (iterating the dataset without a model),
        global_batch_size, image_size, model, augment.
    """
    strategy, info, config, derived = _setup(config)
    with precision_policy(config.run.precision):
        model = _model(config, derived, info, strategy)
        train_ds, _, _ = builders.make_datasets(config, derived, info)
        batch = next(iter(train_ds))
        bare_ds = tf.data.Dataset.from_tensors(batch).repeat()
        gb = derived["global_batch_size"]
        _images_per_sec(model, bare_ds, skip + 1, 0, gb)  # Trace once.
        bare, e2e = [], []
        for _ in range(repeats):  # Interleaved, so load changes hit both alike.
            bare.append(_images_per_sec(model, bare_ds, steps, skip, gb))
            e2e.append(_images_per_sec(model, train_ds, steps, skip, gb))
    it = iter(train_ds)
    for _ in range(skip):
        next(it)
    start = time.perf_counter()
    for _ in range(steps):
        next(it)
    pipeline = steps * gb / (time.perf_counter() - start)
    return {
        "model": config.model.name,
        "image_size": config.data.image_size,
        "global_batch_size": gb,
        "augment": config.data.augment,
        "bare_images_per_sec": max(bare),
        "end_to_end_images_per_sec": max(e2e),
        "ratio": max(e2e) / max(bare),
        "pipeline_only_images_per_sec": pipeline,
    }


def benchmark_switches(
    config,
    steps=20,
    skip=3,
    variants=(
        ("float32", False),
        ("mixed_bfloat16", False),
        ("mixed_float16", False),
        ("float32", True),
    ),
):
    """Bare train-step throughput for each (precision, jit_compile) pair.

    Returns:
        A list of dicts: precision, jit_compile, images_per_sec.
    """
    strategy, info, base, derived = _setup(config)
    results = []
    for precision, jit in variants:
        cfg = base.replace(run={"precision": precision, "jit_compile": jit})
        with precision_policy(precision):
            model = _model(cfg, derived, info, strategy)
            train_ds, _, _ = builders.make_datasets(cfg, derived, info)
            batch_ds = tf.data.Dataset.from_tensors(next(iter(train_ds))).repeat()
            gb = derived["global_batch_size"]
            _images_per_sec(model, batch_ds, skip + 1, 0, gb)
            rate = _images_per_sec(model, batch_ds, steps, skip, gb)
        results.append({"precision": precision, "jit_compile": jit, "images_per_sec": rate})
        keras.backend.clear_session()
    return results


def baseline_run(dataset, image_size, epochs, seed, batch_size=64):
    """The naive baseline: keras.applications.EfficientNetB0(weights=None) + Adam(1e-3).

    No augmentation, no schedule, no label smoothing; trained on the same
    training split as our runs (the held-out validation part is unused) and
    scored on test. Returns train_accuracy (last epoch), test_top1, wall_s.
    """
    keras.utils.set_random_seed(seed)
    info = data.dataset_info(dataset)
    common = dict(one_hot=True, num_classes=info.num_classes)
    train_ds = data.load_dataset(
        dataset, "train", image_size, batch_size, shuffle=True, seed=seed, **common
    )
    test_ds = data.load_dataset(dataset, "test", image_size, batch_size, **common)
    start = time.perf_counter()
    model = keras.applications.EfficientNetB0(
        weights=None, input_shape=(image_size, image_size, 3), classes=info.num_classes
    )
    model.compile(keras.optimizers.Adam(1e-3), "categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(train_ds, epochs=epochs, verbose=0).history
    test = model.evaluate(test_ds, verbose=0, return_dict=True)
    return {
        "train_accuracy": history["accuracy"][-1],
        "val_accuracy": None,
        "test_top1": test["accuracy"],
        "wall_s": time.perf_counter() - start,
    }


def recipe_run(dataset, model, image_size, epochs, seed, model_dir, **overrides):
    """One run of `train` with the default recipe (plus `overrides`, flag names).

    Returns train_accuracy (last epoch, as trained), val_accuracy (best),
    test_top1 (best.keras), wall_s, the resolved recipe, the progressive
    stages and the per-epoch history.
    """
    values = {
        "dataset": dataset,
        "model": model,
        "image_size": image_size,
        "epochs": epochs,
        "seed": seed,
        "model_dir": model_dir,
        "verbose": 0,
        **overrides,
    }
    result = loop.train(config_lib.config_from_flags(values))
    with open(result.config_path) as f:
        resolved = json.load(f)["config"]
    return {
        "train_accuracy": result.history[-1]["accuracy"],
        "val_accuracy": result.best_val_accuracy,
        "test_top1": result.metrics["top1"],
        "wall_s": result.wall_time_s,
        "recipe": resolved["optimizer"],
        "augment": resolved["data"]["augment"],
        "progressive": resolved["data"]["progressive"],
        "history": result.history,
    }


def summarize(rows):
    """Mean and spread (max - min) per (dataset, method) of `rows` from the runs above."""
    import numpy as np

    groups = {}
    for row in rows:
        groups.setdefault((row["dataset"], row["method"]), []).append(row)
    out = []
    for (dataset, method), runs in sorted(groups.items()):
        entry = {"dataset": dataset, "method": method, "seeds": len(runs)}
        for key in ("test_top1", "train_accuracy", "val_accuracy", "wall_s"):
            values = [r[key] for r in runs if r.get(key) is not None]
            if values:
                entry[key] = float(np.mean(values))
                entry[key + "_spread"] = float(np.max(values) - np.min(values))
        out.append(entry)
    return out


def transfer_runs(source, target, model, image_size, epochs, seed, out_dir, source_epochs=None):
    """Fine-tuning from a model trained on `source` vs training `target` from scratch.

    Trains `model` on `source` (default recipe), then on `target` three ways for
    the same `epochs`: from scratch, fine-tuned from the source's last.keras
    (recipe "finetune"), and fine-tuned with frozen BatchNorm. Returns
    {method: row} with the rows of `recipe_run`.
    """
    import os

    source_run = os.path.join(out_dir, "source")
    rows = {
        "source": recipe_run(source, model, image_size, source_epochs or epochs, seed, source_run)
    }
    weights = os.path.join(source_run, "last.keras")
    for method, extra in (
        ("scratch", {}),
        ("finetune", {"weights": weights}),
        ("finetune_freeze_bn", {"weights": weights, "freeze_bn": True}),
    ):
        keras.backend.clear_session()
        rows[method] = recipe_run(
            target, model, image_size, epochs, seed, os.path.join(out_dir, method), **extra
        )
    return rows


def elapsed_by_epoch(history):
    """Wall seconds from the start of `train` to the end of each epoch's validation.

    Everything counts: model building, tracing, stage changes, training,
    BatchNorm re-estimation and validation (`elapsed_time_s` of the history;
    a run must not have been resumed, or the clock restarted).
    """
    return [record["elapsed_time_s"] for record in history]


def time_to_accuracy(history, target):
    """Seconds until validation accuracy first reaches `target` (None if it never does)."""
    for seconds, record in zip(elapsed_by_epoch(history), history):
        if record.get("val_accuracy", -1.0) >= target:
            return seconds
    return None


def progressive_runs(dataset, model, image_size, epochs, seed, out_dir, **overrides):
    """The default recipe with progressive learning off, then on; same data, seed and epochs.

    Returns {"off": row, "on": row} with the rows of `recipe_run`.
    """
    import os

    rows = {}
    for mode in ("off", "on"):
        keras.backend.clear_session()
        rows[mode] = recipe_run(
            dataset,
            model,
            image_size,
            epochs,
            seed,
            os.path.join(out_dir, mode),
            progressive=mode,
            **overrides,
        )
    return rows


def progressive_summary(rows, target=None):
    """Per (dataset, model, seed): time to a common validation accuracy with progressive off and on.

    `target` None takes, per (dataset, model), the best validation accuracy
    the weaker mode reached over its seeds' minimum, floored to a whole
    percent: the highest accuracy every run of both modes reached.
    """
    import math

    groups = {}
    for row in rows:
        groups.setdefault((row["dataset"], row["model"]), []).append(row)
    out = []
    for (dataset, model), runs in sorted(groups.items()):
        goal = target if target else math.floor(100 * min(r["val_accuracy"] for r in runs)) / 100
        for row in sorted(runs, key=lambda r: (r["seed"], r["progressive"])):
            out.append(
                {
                    "dataset": dataset,
                    "model": model,
                    "seed": row["seed"],
                    "progressive": row["progressive"],
                    "target_val_accuracy": goal,
                    "time_to_target_s": time_to_accuracy(row["history"], goal),
                    "all_epochs_s": elapsed_by_epoch(row["history"])[-1],
                    "wall_s": row["wall_s"],
                    "best_val_accuracy": row["val_accuracy"],
                    "test_top1": row["test_top1"],
                }
            )
    return out


def plot_progressive(rows, summary, path):
    """Validation accuracy against wall seconds since the run started, off vs on.

    One panel per (dataset, model); one line per run; the dashed line is the
    target of `progressive_summary`. Written atomically (PNG).
    """
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    from keras_effnet import io

    panels = sorted({(r["dataset"], r["model"]) for r in rows})
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.4), squeeze=False)
    colors = {"off": "tab:blue", "on": "tab:orange"}
    for ax, (dataset, model) in zip(axes[0], panels):
        for row in (r for r in rows if (r["dataset"], r["model"]) == (dataset, model)):
            label = f"progressive {row['progressive']}, seed {row['seed']}"
            ax.plot(
                elapsed_by_epoch(row["history"]),
                [h["val_accuracy"] for h in row["history"]],
                marker="o",
                ms=3,
                color=colors[row["progressive"]],
                label=label,
                alpha=1.0 if row["seed"] == 0 else 0.55,
            )
        goal = next(
            s["target_val_accuracy"]
            for s in summary
            if (s["dataset"], s["model"]) == (dataset, model)
        )
        ax.axhline(goal, ls="--", color="gray", lw=1)
        ax.set_title(f"{dataset}, {model}")
        ax.set_xlabel("wall seconds since start (2 shared CPU cores)")
        ax.set_ylabel("validation accuracy")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    buffer = _io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    io.write_bytes_atomic(path, buffer.getvalue())
