"""The default recipe against a naive baseline on real datasets, several seeds.

    python scripts/bench_training.py                       # docs/training.md figures
    python scripts/bench_training.py --datasets=photos --seeds=1 --epochs=5
    python scripts/bench_training.py --progressive --datasets=photos,fashion --models=b0 \
        --image_size=64 --patch_size=64 --seeds=1          # progressive learning off vs on

For each dataset (built offline by keras_effnet.training.real_data) and seed it
trains Lite0 and B0 with every training flag at its default, and the naive
baseline (keras.applications.EfficientNetB0(weights=None) + Adam(1e-3), batch
64, no augmentation) for the same epochs on the same training split, then
prints mean and spread (max - min over seeds) of test top-1, train and
validation accuracy and wall time. Results are kept per run in
--output_dir/results.json (re-running skips finished runs) and the table in
--output_dir/table.md.

With --progressive it trains each of --models on each dataset and seed with
--progressive=off and =on instead (every other flag at its default) and writes
the wall time (training + validation) to a common validation accuracy:
--output_dir/progressive.json, progressive.md and progressive.png (validation
accuracy against seconds).
"""

from absl import app, flags

from keras_effnet import _quiet_import

# Before the rest: TensorFlow starts without its native INFO lines.
_quiet_import.import_backend_quietly()

_DATASETS = flags.DEFINE_list(
    "datasets", ["mnist5k", "fashion", "photos"], "Datasets to build and train."
)
_MODELS = flags.DEFINE_list(
    "models", ["lite0", "b0"], "Our variants, trained with the default recipe."
)
_SEEDS = flags.DEFINE_integer("seeds", 3, "Seeds per (dataset, method).")
_EPOCHS = flags.DEFINE_integer("epochs", 12, "Epochs for every method.")
_IMAGE_SIZE = flags.DEFINE_integer("image_size", 32, "Training and test resolution.")
_TRAIN_PER_CLASS = flags.DEFINE_integer(
    "train_per_class", 150, "Training images per class (10 % held out)."
)
_TEST_PER_CLASS = flags.DEFINE_integer("test_per_class", 100, "Test images per class.")
_OUTPUT_DIR = flags.DEFINE_string(
    "output_dir", "runs/bench_training", "Datasets, runs and results."
)
_TRANSFER = flags.DEFINE_list(
    "transfer",
    [],
    "SOURCE,TARGET: instead of the comparison, train on SOURCE (--train_per_class "
    "images per class), then TARGET (--transfer_per_class) from scratch vs fine-tuned, --seeds seeds.",
)
_TRANSFER_PER_CLASS = flags.DEFINE_integer(
    "transfer_per_class", 50, "Target training images per class."
)
_PROGRESSIVE = flags.DEFINE_bool(
    "progressive",
    False,
    "Instead of the comparison: each of --models with progressive learning off and on.",
)
_TARGET_ACCURACY = flags.DEFINE_float(
    "target_accuracy",
    0.0,
    "With --progressive: the validation accuracy to time; 0 = the highest "
    "whole percent every run of a (dataset, model) reached.",
)
_PATCH_SIZE = flags.DEFINE_integer(
    "patch_size", 32, "Side of the photo patches (the digit sets are 28 px)."
)


def _table(summary):
    lines = [
        "| dataset | method | seeds | test top-1 | train acc | val acc | wall s |",
        "|---|---|---|---|---|---|---|",
    ]

    def cell(entry, key, scale=100, fmt="{:.1f}"):
        if key not in entry:
            return "-"
        return (
            f"{fmt.format(entry[key] * scale)} ± {fmt.format(entry[key + '_spread'] * scale / 2)}"
        )

    for e in summary:
        lines.append(
            f"| {e['dataset']} | {e['method']} | {e['seeds']} | {cell(e, 'test_top1')} | "
            f"{cell(e, 'train_accuracy')} | {cell(e, 'val_accuracy')} | "
            f"{cell(e, 'wall_s', 1, '{:.0f}')} |"
        )
    return "\n".join(lines)


def _transfer(out):
    import os

    from keras_effnet import io
    from keras_effnet.bench import training as bench
    from keras_effnet.training import real_data

    if len(_TRANSFER.value) != 2:
        raise app.UsageError(
            f"--transfer takes SOURCE,TARGET. Received: --transfer={_TRANSFER.value}"
        )
    source_name, target_name = _TRANSFER.value
    source = real_data.build(
        source_name, os.path.join(out, "data"), _TRAIN_PER_CLASS.value, _TEST_PER_CLASS.value
    )
    target = real_data.build(
        target_name, os.path.join(out, "data"), _TRANSFER_PER_CLASS.value, _TEST_PER_CLASS.value
    )
    rows = bench.transfer_runs(
        source,
        target,
        _MODELS.value[0],
        _IMAGE_SIZE.value,
        _EPOCHS.value,
        _SEEDS.value,
        os.path.join(out, "transfer"),
    )
    for row in rows:
        row["dataset"] = source_name if row["method"] == "source" else target_name
        print(
            f"{row['dataset']:8s} {row['method']:19s} seed {row['seed']}: test top-1 "
            f"{row['test_top1']:.4f} train acc {row['train_accuracy']:.4f}",
            flush=True,
        )
    io.write_json_atomic(os.path.join(out, "transfer.json"), {"runs": rows})
    table = _table(bench.summarize(rows))
    io.write_text_atomic(os.path.join(out, "transfer.md"), table + "\n")
    print(table)


def _progressive(out):
    import json
    import os

    from keras_effnet import io
    from keras_effnet.bench import progressive as bench
    from keras_effnet.training import real_data

    path = os.path.join(out, "progressive.json")
    rows = []
    if os.path.exists(path):
        with open(path) as f:
            rows = json.load(f)["runs"]
    done = {(r["dataset"], r["model"], r["seed"], r["progressive"]) for r in rows}
    settings = {
        "epochs": _EPOCHS.value,
        "image_size": _IMAGE_SIZE.value,
        "patch_size": _PATCH_SIZE.value,
        "train_per_class": _TRAIN_PER_CLASS.value,
        "test_per_class": _TEST_PER_CLASS.value,
    }
    for seed in range(_SEEDS.value):
        for name in _DATASETS.value:
            folder = real_data.build(
                name,
                os.path.join(out, "data"),
                _TRAIN_PER_CLASS.value,
                _TEST_PER_CLASS.value,
                patch_size=_PATCH_SIZE.value,
            )
            for model in _MODELS.value:
                if {(name, model, seed, m) for m in ("off", "on")} <= done:
                    continue
                run_dir = os.path.join(out, "progressive", f"{name}-{model}-s{seed}")
                for mode, row in bench.progressive_runs(
                    folder, model, _IMAGE_SIZE.value, _EPOCHS.value, seed, run_dir
                ).items():
                    row.update(dataset=name, model=model, seed=seed, **settings)
                    rows.append(row)
                    print(
                        f"{name:8s} {model:6s} seed {seed} progressive {mode:3s}: best val "
                        f"{row['val_accuracy']:.4f} test top-1 {row['test_top1']:.4f} "
                        f"({row['wall_s']:.0f} s)",
                        flush=True,
                    )
                io.write_json_atomic(path, {"settings": settings, "runs": rows})
    summary = bench.progressive_summary(rows, _TARGET_ACCURACY.value or None)
    lines = [
        "| dataset | model | seed | progressive | target val acc | s to target | s for all epochs | "
        "best val acc | test top-1 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for e in summary:
        reach = f"{e['time_to_target_s']:.0f}" if e["time_to_target_s"] is not None else "never"
        lines.append(
            f"| {e['dataset']} | {e['model']} | {e['seed']} | {e['progressive']} | "
            f"{100 * e['target_val_accuracy']:.0f} % | {reach} | {e['all_epochs_s']:.0f} | "
            f"{100 * e['best_val_accuracy']:.1f} | {100 * e['test_top1']:.1f} |"
        )
    io.write_text_atomic(os.path.join(out, "progressive.md"), "\n".join(lines) + "\n")
    io.write_json_atomic(os.path.join(out, "progressive_summary.json"), {"summary": summary})
    bench.plot_progressive(rows, summary, os.path.join(out, "progressive.png"))
    print("\n".join(lines))


def main(argv):
    del argv
    import json
    import os

    import keras

    from keras_effnet import io
    from keras_effnet.bench import training as bench
    from keras_effnet.training import real_data

    out = _OUTPUT_DIR.value
    if _TRANSFER.value:
        return _transfer(out)
    if _PROGRESSIVE.value:
        return _progressive(out)
    results_path = os.path.join(out, "results.json")
    rows = []
    if os.path.exists(results_path):
        with open(results_path) as f:
            rows = json.load(f)["runs"]
    done = {(r["dataset"], r["method"], r["seed"]) for r in rows}
    settings = {
        "epochs": _EPOCHS.value,
        "image_size": _IMAGE_SIZE.value,
        "train_per_class": _TRAIN_PER_CLASS.value,
        "test_per_class": _TEST_PER_CLASS.value,
    }
    for name in _DATASETS.value:
        folder = real_data.build(
            name, os.path.join(out, "data"), _TRAIN_PER_CLASS.value, _TEST_PER_CLASS.value
        )
        for seed in range(_SEEDS.value):
            for method in [*_MODELS.value, "baseline_b0_adam"]:
                if (name, method, seed) in done:
                    continue
                keras.backend.clear_session()
                if method == "baseline_b0_adam":
                    row = bench.baseline_run(folder, _IMAGE_SIZE.value, _EPOCHS.value, seed)
                else:
                    run_dir = os.path.join(out, "runs", f"{name}-{method}-s{seed}")
                    row = bench.train_briefly(
                        method,
                        run_dir,
                        dataset=folder,
                        image_size=_IMAGE_SIZE.value,
                        epochs=_EPOCHS.value,
                        seed=seed,
                    )
                row.update(dataset=name, method=method, seed=seed, **settings)
                rows.append(row)
                io.write_json_atomic(results_path, {"settings": settings, "runs": rows})
                print(
                    f"{name:8s} {method:17s} seed {seed}: test top-1 {row['test_top1']:.4f} "
                    f"train acc {row['train_accuracy']:.4f} ({row['wall_s']:.0f} s)",
                    flush=True,
                )
    table = _table(bench.summarize(rows))
    io.write_text_atomic(os.path.join(out, "table.md"), table + "\n")
    print(table)


if __name__ == "__main__":
    app.run(main)
