"""`train(config)`: the EfficientNet recipe under a tf.distribute strategy.

A run directory holds:
  config.json        the resolved ExperimentConfig plus derived values (`plan.RunPlan`)
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

from keras_effnet import data, io
from keras_effnet.errors import ConfigError
from keras_effnet.training import callbacks as cb
from keras_effnet.training import fitting, modeling, plan, progressive, recipe, rundir
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


def describe(run_plan, resuming_at):
    """The run's first lines: data splits and their sources, recipe, augmentation."""
    config = run_plan.config
    d, m, o = config.data, config.model, config.optimizer
    splits = " | ".join(
        f"{s} {run_plan.splits[s]} ({run_plan.split_sources.get(s, '?')})"
        for s in ("train", "validation", "test")
    )
    augment = d.augment if d.augment not in ("", "none") else "none"
    side = run_plan.source_image_side
    source = f"source images {side} px, " if side else ""
    lines = [
        f"keras-effnet train: {m.name} at {d.image_size} px ({source}stem stride "
        f"{m.stem_strides}) on {d.dataset!r} "
        f"({run_plan.dataset_kind}, {run_plan.num_classes} classes), {run_plan.strategy}",
        f"  splits: {splits}",
        f"  final evaluation on: {config.run.eval_split}"
        + (
            ""
            if config.run.eval_split == "test"
            else "  (NOT a held-out test score: the dataset has no test split)"
            if not run_plan.splits["test"]
            else ""
        ),
        f"  recipe {o.recipe}: {o.name}, peak lr {run_plan.peak_learning_rate:.3g} "
        f"(global batch {run_plan.global_batch_size}), {o.schedule} schedule, warmup "
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
        + ("  [wrong for digits or text: pass --augment=shift]" if "flip" in augment else ""),
        f"  progressive: {progressive.describe(run_plan.stages)} ({run_plan.progressive_reason})",
        f"  {'resuming after epoch ' + str(resuming_at) if resuming_at else 'starting'}: "
        f"{config.run.epochs} epochs x {run_plan.steps_per_epoch} steps",
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
    run_plan = plan.resolve(config, info, strategy.num_replicas_in_sync)
    run_plan = run_plan.replace(strategy=strategy_name(strategy))
    model_dir = run_plan.config.run.model_dir
    backup_dir = os.path.join(model_dir, "backup" if is_chief else f"backup_worker{task_id}")
    with rundir.claim(model_dir, model_dir if is_chief else backup_dir):
        return _train_locked(
            run_plan, info.class_names, strategy, is_chief, backup_dir, wall_start, extra_callbacks
        )


def _train_locked(
    run_plan, class_names, strategy, is_chief, backup_dir, wall_start, extra_callbacks
):
    """`train` once the run directory is this process's (see `rundir.claim`)."""
    config = run_plan.config
    model_dir = config.run.model_dir
    resuming = rundir.check_resume(model_dir, run_plan, class_names)
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
        inference_model = modeling.build_model(config.model, run_plan.num_classes, image_size)
        # Before anything is written: a size that cannot fit is refused up front.
        modeling.check_memory(inference_model, config.data.batch_size)
        loss, metrics = recipe.make_loss_and_metrics(
            run_plan.num_classes, config.optimizer.label_smoothing
        )
        inference_model.compile(loss=loss, metrics=metrics)
    for directory in (model_dir, backup_dir):  # Left by a process killed mid-write.
        io.remove_stale_temp_files(directory)
    start_epoch = cb.backup_epoch(backup_dir) if resuming else 0
    if is_chief:
        io.write_text_atomic(
            paths["config.json"],
            json.dumps(
                {"config": config.to_dict(), "derived": run_plan.to_dict()},
                indent=2,
                sort_keys=True,
            ),
        )
        io.write_text_atomic(paths["labels.txt"], "".join(f"{n}\n" for n in class_names))
    if config.run.verbose:
        print(describe(run_plan, start_epoch), flush=True)

    stages = run_plan.stages
    with precision_policy(config.run.precision):
        with strategy.scope():
            model = build_training_model(run_plan, None if len(stages) > 1 else image_size)
        _, val_ds, bn_batches = make_datasets(run_plan)
        meter = cb.ThroughputMeter(run_plan.global_batch_size)
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
                steps=run_plan.steps_per_epoch,
                model=model,
            )
        )
        fitting.check_backup_stage(backup_dir, stages, start_epoch)
        fitting.fit_stages(model, run_plan, strategy, start_epoch, callbacks, stage_log)

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
            batch_size=run_plan.global_batch_size,
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
