"""`train(config)`: the EfficientNet recipe under a tf.distribute strategy.

A run directory holds:
  config.json        the resolved ExperimentConfig plus derived values
  labels.txt         class names, one per line (index = label)
  best.keras         EMA weights (BatchNorm re-estimated) of the epoch with the
                     best validation accuracy; validation is held out from
                     train when the dataset has none, never taken from test
  last.keras         the same after the last completed epoch
  train_state.json   best value, epochs completed, per-epoch history
  history.csv        per-epoch metrics (rewritten from train_state.json)
  logs/              TensorBoard
  backup/            BackupAndRestore state (model + optimizer, epoch counter)
  results.json       final evaluation of best.keras on `eval_split`
Re-running the same command resumes from backup/ (at most the interrupted
epoch is redone) and continues exactly as the uninterrupted run would have:
the optimizer, EMA, random generators and the input stream's position are
all restored. Re-running a finished run changes no file (see `rundir`).
"""

import dataclasses
import json
import logging
import os
import time

import keras
import tensorflow as tf

from keras_effnet import data, io, variants
from keras_effnet.errors import ConfigError
from keras_effnet.training import callbacks as cb
from keras_effnet.training import fitting, modeling, progressive, recipe, rundir
from keras_effnet.training.builders import build_training_model, make_datasets
from keras_effnet.training.evaluation import evaluate
from keras_effnet.training.strategy import (
    make_strategy,
    precision_policy,
    split_cpu,
    strategy_name,
    task_info,
)

log = logging.getLogger("keras_effnet.training")


@dataclasses.dataclass
class TrainResult:
    """What `train` produced.

    Attributes:
        model_dir: the run directory.
        best_model_path, last_model_path: .keras files (EMA weights, float32).
        labels_path: labels.txt (class names, one per line).
        config_path: config.json.
        metrics: evaluation of best.keras on `eval_split` (see `evaluate`);
            None on non-chief workers.
        best_val_accuracy, best_epoch: model selection.
        initial_epoch: epoch the run (re)started from; epochs_completed: total.
        images_per_sec: steady training throughput (first epoch excluded when
            possible); wall_time_s: this call's wall time.
        num_replicas: replicas in sync.
        optimizer_steps: the optimizer's step counter at the end (restored
            with the backup, so it counts every step of a resumed run once).
        history: per-epoch logs (loss, accuracy, val_*, lr, images_per_sec).
    """

    model_dir: str
    best_model_path: str
    last_model_path: str
    labels_path: str
    config_path: str
    metrics: dict | None
    best_val_accuracy: float | None
    best_epoch: int | None
    initial_epoch: int
    epochs_completed: int
    images_per_sec: float
    wall_time_s: float
    num_replicas: int
    optimizer_steps: int
    history: list

    def to_dict(self):
        return dataclasses.asdict(self)

    def summary(self):
        m = self.metrics or {}
        test = (
            f"{m.get('split', 'test')} top1 {m['top1']:.4f} "
            + (f"top5 {m['top5']:.4f} " if "top5" in m else "")
            + f"loss {m['loss']:.4f}"
            if m
            else "no evaluation on this worker"
        )
        val = f"{self.best_val_accuracy:.4f}" if self.best_val_accuracy is not None else "n/a"
        return (
            f"keras-effnet train: {test} | best val acc {val} (epoch {self.best_epoch}) | "
            f"{self.images_per_sec:.1f} img/s | {self.wall_time_s:.1f}s wall | "
            f"{self.epochs_completed} epochs | {self.best_model_path}"
        )


def _pick(value, auto):
    """`value`, or `auto` where it is None ("auto": the recipe or the dataset decides)."""
    return auto if value is None else value


def resolve(config, info, num_replicas):
    """Fills every "auto" value; returns (resolved config, derived values)."""
    variant = variants.get_variant(config.model.name)
    if info.num_classes < 2:
        raise ConfigError(
            f"A classifier needs at least 2 classes; dataset {config.data.dataset!r} has "
            f"{info.num_classes} ({', '.join(info.class_names)}): its accuracy would be 1.0 by "
            f"construction. Received: dataset={config.data.dataset!r}"
        )
    weights = config.model.weights
    image_size = config.data.image_size or modeling.weights_resolution(weights, variant)
    freeze_bn = _pick(config.model.freeze_bn, bool(weights))
    head_epochs = (
        recipe.auto_head_epochs(config.run.epochs, weights)
        if config.model.head_epochs is None
        else min(config.model.head_epochs, config.run.epochs)
    )
    crop_min_area = _pick(config.data.crop_min_area, recipe.AUTO_CROP_MIN_AREA)
    global_batch = config.data.batch_size * num_replicas
    train_examples = info.splits["train"]
    steps = config.run.steps_per_epoch or train_examples // global_batch
    if steps < 1:
        raise ConfigError(
            f"The training split ({train_examples} examples) is smaller than one global batch "
            f"({config.data.batch_size} x {num_replicas} replicas). "
            f"Received: batch_size={config.data.batch_size}"
        )
    total = steps * config.run.epochs
    augment = config.data.augment
    if augment == "auto":
        augment = recipe.auto_augment(info.kind, total)
    opt = config.optimizer
    name = recipe.recipe_name(opt.recipe, config.model.weights)
    table = recipe.RECIPES[name]
    pick = {key: getattr(opt, key) for key in ("name", "schedule")}  # Enums: "auto".
    pick = {key: table[key] if value == "auto" else value for key, value in pick.items()}
    for key in ("base_lr", "label_smoothing", "weight_decay"):  # None = auto.
        pick[key] = _pick(getattr(opt, key), table[key])
    lr_batch = _pick(opt.lr_batch_size, table["lr_batch_size"])
    warmup = (
        recipe.auto_warmup_epochs(config.run.epochs)
        if opt.warmup_epochs is None
        else opt.warmup_epochs
    )
    ema = (
        recipe.auto_ema_momentum(total, table["ema_cap"], table["ema_fraction"])
        if opt.ema_momentum is None
        else opt.ema_momentum
    )
    if opt.bn_images is None:  # Frozen BatchNorm keeps the source model's statistics.
        bn_images = 0 if freeze_bn else min(recipe.AUTO_BN_IMAGES, train_examples)
    else:
        bn_images = opt.bn_images
    dropout = _pick(config.model.dropout_rate, variant.dropout)
    drop_connect = (
        recipe.auto_drop_connect(total)
        if config.model.drop_connect_rate is None
        else config.model.drop_connect_rate
    )
    if config.run.eval_split != "auto":
        eval_split = config.run.eval_split
    else:
        eval_split = "test" if info.splits["test"] else "validation"
    stages = progressive.resolve_stages(config.data, config.run.epochs, image_size, dropout, total)
    resolved = config.replace(
        data={
            "image_size": image_size,
            "augment": augment,
            "crop_min_area": float(crop_min_area),
            "progressive": "on" if len(stages[0]) > 1 else "off",
            "progressive_stages": len(stages[0]),
            "progressive_start_size": stages[0][0].image_size,
        },
        model={
            "name": variant.name,
            "dropout_rate": dropout,
            "drop_connect_rate": float(drop_connect),
            "freeze_bn": freeze_bn,
            "head_epochs": int(head_epochs),
        },
        optimizer={
            "recipe": name,
            **pick,
            "lr_batch_size": lr_batch,
            "warmup_epochs": float(warmup),
            "ema_momentum": float(round(ema, 6)),
            "bn_images": int(bn_images),
        },
        run={"model_dir": os.path.abspath(config.run.model_dir), "eval_split": eval_split},
    )
    derived = {
        "num_replicas": num_replicas,
        "global_batch_size": global_batch,
        "steps_per_epoch": steps,
        "total_steps": total,
        "peak_learning_rate": recipe.peak_learning_rate(pick["base_lr"], global_batch, lr_batch),
        "warmup_steps": int(round(warmup * steps)),
        "num_classes": info.num_classes,
        "dataset_kind": info.kind,
        "splits": info.splits,
        "split_sources": info.sources,
        "progressive": {"reason": stages[1], "stages": [s.to_dict() for s in stages[0]]},
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__},
    }
    return resolved, derived


def describe(config, derived, resuming_at):
    """The run's first lines: data splits and their sources, recipe, augmentation."""
    d, m, o = config.data, config.model, config.optimizer
    splits = " | ".join(
        f"{s} {derived['splits'][s]} ({derived['split_sources'].get(s, '?')})"
        for s in ("train", "validation", "test")
    )
    augment = d.augment if d.augment not in ("", "none") else "none"
    lines = [
        f"keras-effnet train: {m.name} at {d.image_size} px on {d.dataset!r} "
        f"({derived['dataset_kind']}, {derived['num_classes']} classes), {derived['strategy']}",
        f"  splits: {splits}",
        f"  final evaluation on: {config.run.eval_split}"
        + (
            ""
            if config.run.eval_split == "test"
            else "  (NOT a held-out test score: the dataset has no test split)"
            if not derived["splits"]["test"]
            else ""
        ),
        f"  recipe {o.recipe}: {o.name}, peak lr {derived['peak_learning_rate']:.3g} "
        f"(global batch {derived['global_batch_size']}), {o.schedule} schedule, warmup "
        f"{o.warmup_epochs:g} epochs, label smoothing {o.label_smoothing:g}, weight decay "
        f"{o.weight_decay:g}, EMA {o.ema_momentum:g}, dropout {m.dropout_rate:g}, stochastic depth "
        f"{m.drop_connect_rate:g}, BatchNorm re-estimated on {o.bn_images} images",
        *(
            [
                f"  fine-tuning from {m.weights}: BatchNorm {'frozen' if m.freeze_bn else 'trained'}"
                f", classifier alone for {m.head_epochs} epoch(s), then the whole network"
            ]
            if m.weights
            else []
        ),
        f"  augment: {augment}"
        + (f" (crop min area {d.crop_min_area:g})" if "crop" in augment else "")
        + ("  [wrong for digits or text: pass --augment=crop]" if "flip" in augment else ""),
        f"  progressive: {progressive.describe(progressive.stages_of(derived))} "
        f"({derived['progressive']['reason']})",
        f"  {'resuming after epoch ' + str(resuming_at) if resuming_at else 'starting'}: "
        f"{config.run.epochs} epochs x {derived['steps_per_epoch']} steps",
    ]
    return "\n".join(lines)


def _paths_of(model_dir, paths):
    """TrainResult's path fields for the run directory where it is now (it may have moved)."""
    return {
        "model_dir": model_dir,
        "best_model_path": paths["best.keras"],
        "last_model_path": paths["last.keras"],
        "labels_path": paths["labels.txt"],
        "config_path": paths["config.json"],
    }


def train(config, *, extra_callbacks=()):
    """Trains (or resumes) the run described by `config`.

    Args:
        config: an `ExperimentConfig`; `run.model_dir` is required.
        extra_callbacks: more Keras callbacks (run after ours).

    Returns:
        A `TrainResult`.
    """
    wall_start = time.perf_counter()
    if not config.run.model_dir:
        raise ConfigError("`model_dir` is required. Received: model_dir=''")
    if config.run.cpu_devices:
        split_cpu(config.run.cpu_devices)
    keras.utils.set_random_seed(config.run.seed)
    strategy = make_strategy(config.run.strategy)
    _, task_id, is_chief = task_info(strategy)
    info = data.dataset_info(config.data.dataset, config.data.data_dir)
    config, derived = resolve(config, info, strategy.num_replicas_in_sync)
    derived["strategy"] = strategy_name(strategy)
    model_dir = config.run.model_dir
    backup_dir = os.path.join(model_dir, "backup" if is_chief else f"backup_worker{task_id}")
    with rundir.claim(model_dir, model_dir if is_chief else backup_dir):
        return _train_locked(
            config, derived, info, strategy, is_chief, backup_dir, wall_start, extra_callbacks
        )


def _train_locked(
    config, derived, info, strategy, is_chief, backup_dir, wall_start, extra_callbacks
):
    """`train` once the run directory is this process's (see `rundir.claim`)."""
    model_dir = config.run.model_dir
    resuming = rundir.check_resume(model_dir, config, derived, info.class_names)
    paths = {
        name: os.path.join(model_dir, name)
        for name in ("config.json", "labels.txt", "best.keras", "last.keras", "results.json")
    }
    done = rundir.finished(model_dir, config.run.epochs) if resuming else None
    fields = {f.name for f in dataclasses.fields(TrainResult)}
    if done is not None and fields <= set(done):  # A finished run: report it, change no file.
        done = {k: v for k, v in done.items() if k in fields}
        result = TrainResult(**{**done, **_paths_of(model_dir, paths)})
        if config.run.verbose:
            print(
                f"keras-effnet train: {model_dir} is a finished run ({result.epochs_completed} "
                f"epochs); its files are unchanged. Use a new --model_dir to train again.",
                flush=True,
            )
            print(result.summary(), flush=True)
        return result
    image_size = config.data.image_size
    with precision_policy("float32"):
        inference_model = modeling.build_model(config.model, info.num_classes, image_size)
        # Before anything is written: a size that cannot fit is refused up front.
        modeling.check_memory(inference_model, config.data.batch_size)
        loss, metrics = recipe.make_loss_and_metrics(
            info.num_classes, config.optimizer.label_smoothing
        )
        inference_model.compile(loss=loss, metrics=metrics)
    for directory in (model_dir, backup_dir):  # Left by a process killed mid-write.
        io.remove_stale_temp_files(directory)
    start_epoch = cb.backup_epoch(backup_dir) if resuming else 0
    if is_chief:
        io.write_text_atomic(
            paths["config.json"],
            json.dumps({"config": config.to_dict(), "derived": derived}, indent=2, sort_keys=True),
        )
        io.write_text_atomic(paths["labels.txt"], "".join(f"{n}\n" for n in info.class_names))
    if config.run.verbose:
        print(describe(config, derived, start_epoch), flush=True)

    stages = progressive.stages_of(derived)
    with precision_policy(config.run.precision):
        with strategy.scope():
            model = build_training_model(
                config, derived, info, None if len(stages) > 1 else image_size
            )
        _, val_ds, bn_batches = make_datasets(config, derived, info)
        meter = cb.ThroughputMeter(derived["global_batch_size"])
        checkpoint = cb.EvaluateAndCheckpoint(
            model_dir,
            inference_model,
            write=is_chief,
            val_ds=val_ds,
            bn_batches=bn_batches,
            monitor="val_accuracy" if val_ds is not None else "accuracy",
            clock_start=wall_start,
        )
        stage_log = progressive.StageLog()
        backup = cb.AtomicBackupAndRestore(
            backup_dir,
            delete_checkpoint=False,
            extra_state=lambda: {"progressive_stage": stage_log.stage.to_dict()},
        )
        callbacks = [meter, stage_log, checkpoint, backup]
        if is_chief:
            callbacks.append(cb.TensorBoard(os.path.join(model_dir, "logs"), write_graph=False))
        callbacks = (
            keras.callbacks.CallbackList(  # One list: progress reads "Epoch 5/12" in any stage.
                [*callbacks, *extra_callbacks, *([cb.ProgressBar()] if config.run.verbose else [])],
                add_history=True,
                verbose=config.run.verbose,
                epochs=config.run.epochs,
                steps=derived["steps_per_epoch"],
                model=model,
            )
        )
        fitting.check_backup_stage(backup_dir, stages, start_epoch)
        fitting.fit_stages(
            model, config, derived, info, strategy, stages, start_epoch, callbacks, stage_log
        )

    metrics = None
    state = checkpoint.state
    if is_chief:
        if not os.path.exists(paths["best.keras"]):  # Finished run from an older layout.
            checkpoint.copy_ema_weights()
            io.save_model_atomic(inference_model, paths["best.keras"])
        metrics = evaluate(
            paths["best.keras"],
            config.data.dataset,
            config.run.eval_split,
            data_dir=config.data.data_dir,
            batch_size=derived["global_batch_size"],
        )
    result = TrainResult(
        model_dir=model_dir,
        best_model_path=paths["best.keras"],
        last_model_path=paths["last.keras"],
        labels_path=paths["labels.txt"],
        config_path=paths["config.json"],
        metrics=metrics,
        best_val_accuracy=state["best"],
        best_epoch=state["best_epoch"],
        initial_epoch=start_epoch,
        epochs_completed=state["epochs_completed"],
        images_per_sec=meter.steady_rate(),
        wall_time_s=time.perf_counter() - wall_start,
        num_replicas=strategy.num_replicas_in_sync,
        optimizer_steps=int(model.optimizer.iterations.numpy()),
        history=state["history"],
    )
    if is_chief:
        io.write_text_atomic(paths["results.json"], json.dumps(result.to_dict(), indent=2))
    if config.run.verbose:
        print(result.summary(), flush=True)
    return result
