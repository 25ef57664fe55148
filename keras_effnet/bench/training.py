"""Training runs for the benchmarks: `train_briefly`, the comparison, transfer.

`train_briefly` is the one way a benchmark trains a model: `keras_effnet.training`'s
`train` with the default recipe (what `keras-effnet train` runs), plus flag
overrides where a benchmark needs a different setting. The baselines
(`keras_effnet.bench.baselines`) are the exceptions on purpose.

`run` is scripts/bench_training.py: the recipe against the baselines and a
sweep over datasets and seeds (`compare`), fine-tuning vs from scratch (`transfer`), or
progressive learning off vs on (`progressive.benchmark`), each resumable
from its results file.
"""

import dataclasses
import json
import os

import keras
import numpy as np

from keras_effnet import data, io
from keras_effnet.bench.baselines import baseline_run, default_epochs, small_cnn_run
from keras_effnet.core import checkpoints
from keras_effnet.training import config as config_lib
from keras_effnet.training import loop


def train_briefly(
    model, model_dir, *, dataset="digits", image_size=None, epochs=None, seed=0, **overrides
):
    """Trains `model` with `train` and the default recipe (plus `overrides`, flag names).

    Re-running with the same arguments on a finished `model_dir` only
    re-evaluates (see `train`), so a benchmark can keep its trained models.

    Args:
        model: a variant name ("b0", "lite0", ...).
        model_dir: the run directory (best.keras, last.keras, config.json, ...).
        image_size: the resolution; None = auto (`recipe.auto_image_size`).
        epochs: None = auto (`recipe.auto_epochs`).
        overrides: more training flags (`keras-effnet train` flag names), e.g.
            `weights=`, `progressive="on"`, `optimizer="rmsprop"`.

    Returns:
        A dict: train_accuracy (last epoch, as trained), val_accuracy (best),
        test_top1 (best.keras), wall_s, epochs and image_size (as resolved),
        the resolved recipe (the optimizer section of config.json), augment,
        progressive, the per-epoch history and best_model_path.
    """
    values = {
        "dataset": dataset,
        "model": model,
        **({} if image_size is None else {"image_size": image_size}),
        **({} if epochs is None else {"epochs": epochs}),
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
        "epochs": resolved["run"]["epochs"],
        "image_size": resolved["data"]["image_size"],
        "recipe": resolved["optimizer"],
        "augment": resolved["data"]["augment"],
        "progressive": resolved["data"]["progressive"],
        "history": result.history,
        "best_model_path": result.best_model_path,
    }


def summarize(rows):
    """Mean and spread (max - min) per (dataset, method) of `rows` from the runs above."""
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


def transfer_runs(source, target, model, image_size, epochs, seeds, out_dir, source_epochs=None):
    """Fine-tuning from a model trained on `source` vs training `target` from scratch.

    Trains `model` on `source` once (default recipe, seed 0) and saves it as a
    timm-format `.safetensors` (`checkpoints.save_timm_safetensors`), the file
    a user would download. Then, for each seed, trains on `target` for the
    same `epochs` three ways: from scratch; fine-tuned through
    `weights=<file>` with every fine-tuning default ("finetune": frozen
    BatchNorm, head-only epochs); and fine-tuned with both switched off
    (`freeze_bn=False, head_epochs=0`), the recipe before those defaults.
    Returns a list of rows of `train_briefly`, with "method" and "seed".
    """
    source_run = os.path.join(out_dir, "source")
    source_row = train_briefly(
        model, source_run, dataset=source, epochs=source_epochs or epochs, image_size=image_size
    )
    rows = [dict(source_row, method="source", seed=0)]
    weights = os.path.join(out_dir, "source.safetensors")
    if not os.path.exists(weights):
        checkpoints.save_timm_safetensors(io.load_model(source_row["best_model_path"]), weights)
    methods = (
        ("scratch", {}),
        ("finetune", {"weights": weights}),
        ("finetune_all_layers", {"weights": weights, "freeze_bn": False, "head_epochs": 0}),
    )
    for seed in range(seeds):
        for method, extra in methods:
            keras.backend.clear_session()
            row = train_briefly(
                model,
                os.path.join(out_dir, f"s{seed}", method),
                dataset=target,
                epochs=epochs,
                image_size=image_size,
                seed=seed,
                **extra,
            )
            rows.append(dict(row, method=method, seed=seed))
    return rows


@dataclasses.dataclass(frozen=True)
class BenchOptions:
    """What scripts/bench_training.py measures (its flags; the help text is there)."""

    datasets: tuple = ("mnist5k", "fashion", "photos")
    models: tuple = ("lite0", "b0")
    seeds: int = 3
    epochs: int = 0  # 0: auto (ours: the default; the baselines: the epochs ours resolve to)
    image_size: int = 0  # 0: auto (ours: every flag at its default; baselines: the source side)
    train_per_class: int = 150
    test_per_class: int = 100
    output_dir: str = "runs/bench_training"
    transfer: tuple = ()  # (SOURCE, TARGET): the transfer benchmark instead
    transfer_per_class: int = 50
    progressive: bool = False  # progressive learning off vs on instead
    target_accuracy: float = 0.0  # 0: the highest whole percent every run reached
    patch_size: int = 32
    sweep: tuple = ()  # "flag=value flag=value" settings of models[0]; see `sweep_runs`

    def __post_init__(self):
        if self.transfer and len(self.transfer) != 2:
            raise ValueError(
                f"`transfer` takes (SOURCE, TARGET). Received: transfer={list(self.transfer)}"
            )
        for setting in self.sweep:
            parse_setting(setting)


KERAS_B0 = "keras_b0_adam"
SMALL_CNN = "small_cnn"
SWEEP_BEST = "sweep_best"


def parse_setting(setting):
    """ "augment=shift epochs=24" -> {"augment": "shift", "epochs": 24} (ints read as ints)."""
    values = {}
    for part in setting.split():
        key, sep, value = part.partition("=")
        if not sep or not key or not value:
            raise ValueError(
                f'A sweep setting is "flag=value flag=value ...". Received: sweep={setting!r}'
            )
        values[key] = int(value) if value.lstrip("-").isdigit() else value
    return values


def run(options: BenchOptions) -> list:
    """Runs the benchmark `options` selects; returns its rows (one per training run)."""
    if options.transfer:
        return transfer(options)
    if options.progressive:
        # Imported here: bench.progressive imports this module (train_briefly).
        from keras_effnet.bench import progressive  # pylint: disable=import-outside-toplevel

        return progressive.benchmark(options)
    return compare(options)


def results_table(summary: list) -> str:
    """The Markdown table of `summarize(rows)`: mean ± half the spread over seeds."""
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


def read_runs(path: str) -> list:
    """The rows a results file already holds ([] before the first run): reruns skip them."""
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return json.load(f)["runs"]


def _slug(setting):
    return "_".join(part.replace("=", "-").replace(",", "+") for part in setting.split())


def _print_row(row):
    print(
        f"{row['dataset']:8s} {row['method']:17s} seed {row['seed']}: test top-1 "
        f"{row['test_top1']:.4f} train acc {row['train_accuracy']:.4f} ({row['wall_s']:.0f} s)",
        flush=True,
    )


def sweep_best(rows, dataset):
    """The sweep setting of `dataset` with the best seed-0 validation accuracy (None: no sweep).

    Chosen on validation, never on test: its test score is then an honest
    estimate for the setting a user could have found the same way.
    """
    tried = [r for r in rows if r["dataset"] == dataset and r["method"].startswith("sweep:")]
    tried = [r for r in tried if r["seed"] == 0]
    if not tried:
        return None
    return max(tried, key=lambda r: r["val_accuracy"])["setting"]


def compare(options: BenchOptions) -> list:
    """Our models (every flag at its default), a sweep, and two baselines, per dataset and seed.

    Per dataset: each of `options.models` with the default recipe (the
    resolution, stem stride, augmentation and the rest on auto), the
    keras.applications B0 baseline (`baseline_run`) and the small CNN
    (`small_cnn_run`), for `options.seeds` seeds; then each `options.sweep`
    setting of `models[0]` at seed 0, and the setting with the best
    validation accuracy (`sweep_best`) for the remaining seeds. Writes every
    finished run to `output_dir/results.json` at once (a rerun skips those)
    and the summary to `output_dir/table.md`; prints both.
    """
    from keras_effnet.training import real_data, recipe  # pylint: disable=import-outside-toplevel

    out = options.output_dir
    results_path = os.path.join(out, "results.json")
    rows = read_runs(results_path)
    done = {(r["dataset"], r["method"], r["seed"]) for r in rows}
    settings = {
        "epochs": options.epochs,
        "image_size": options.image_size,
        "train_per_class": options.train_per_class,
        "test_per_class": options.test_per_class,
    }

    def record(name, method, seed, train):
        if (name, method, seed) in done:
            return
        keras.backend.clear_session()
        row = {**settings, **train(), "dataset": name, "method": method, "seed": seed}
        rows.append(row)
        done.add((name, method, seed))
        io.write_json_atomic(results_path, {"settings": settings, "runs": rows})
        _print_row(row)

    def ours(name, folder, model, seed, setting=""):
        sized = {"image_size": options.image_size or None, "epochs": options.epochs or None}
        overrides = {**sized, **parse_setting(setting)}
        tag = f"{name}-{model}" + (f"-{_slug(setting)}" if setting else "")
        run_dir = os.path.join(out, "runs", f"{tag}-s{seed}")
        row = train_briefly(model, run_dir, dataset=folder, seed=seed, **overrides)
        return dict(row, setting=setting) if setting else row

    for name in options.datasets:
        folder = real_data.build(
            name, os.path.join(out, "data"), options.train_per_class, options.test_per_class
        )
        side = data.dataset_info(folder).image_side
        size = options.image_size or recipe.auto_image_size(side, 224)
        epochs = options.epochs or default_epochs(folder)  # The baselines train as long as ours.
        for seed in range(options.seeds):
            for model in options.models:
                record(name, model, seed, lambda m=model: ours(name, folder, m, seed))
            record(name, KERAS_B0, seed, lambda: baseline_run(folder, size, epochs, seed))
            record(name, SMALL_CNN, seed, lambda: small_cnn_run(folder, side, epochs, seed))
        for setting in options.sweep:
            record(
                name,
                f"sweep:{setting}",
                0,
                lambda s=setting: ours(name, folder, options.models[0], 0, s),
            )
        best = sweep_best(rows, name)
        for seed in range(1 if best is not None else options.seeds, options.seeds):
            record(
                name, SWEEP_BEST, seed, lambda: ours(name, folder, options.models[0], seed, best)
            )
    # The best sweep setting's seed 0 is its sweep run.
    for name in options.datasets:
        best = sweep_best(rows, name)
        first = [
            r for r in rows if r["dataset"] == name and r.get("setting") == best and r["seed"] == 0
        ]
        if best is not None and first and (name, SWEEP_BEST, 0) not in done:
            rows.append(dict(first[0], method=SWEEP_BEST))
            done.add((name, SWEEP_BEST, 0))
    io.write_json_atomic(results_path, {"settings": settings, "runs": rows})
    table = results_table(summarize(rows))
    io.write_text_atomic(os.path.join(out, "table.md"), table + "\n")
    print(table)
    return rows


def transfer(options: BenchOptions) -> list:
    """`transfer_runs` from `options.transfer` = (SOURCE, TARGET), built as image folders.

    Writes `output_dir/transfer.json` and `transfer.md`; prints each run and the table.
    """
    from keras_effnet.training import real_data  # pylint: disable=import-outside-toplevel

    out = options.output_dir
    source_name, target_name = options.transfer
    source = real_data.build(
        source_name, os.path.join(out, "data"), options.train_per_class, options.test_per_class
    )
    target = real_data.build(
        target_name, os.path.join(out, "data"), options.transfer_per_class, options.test_per_class
    )
    rows = transfer_runs(
        source,
        target,
        options.models[0],
        options.image_size,
        options.epochs or None,
        options.seeds,
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
    table = results_table(summarize(rows))
    io.write_text_atomic(os.path.join(out, "transfer.md"), table + "\n")
    print(table)
    return rows
