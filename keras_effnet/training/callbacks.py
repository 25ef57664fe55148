"""Callbacks and atomic file writes that make a run survive being killed."""

import json
import os
import shutil
import time

import keras

from keras_effnet.io import write_text_atomic  # noqa: F401  (re-exported)
from keras_effnet.training import recipe


def save_model_atomic(model, path):
    """`model.save(path)` through a temporary .keras file in the same directory."""
    directory, name = os.path.split(path)
    tmp = os.path.join(directory or ".", f".{name[:-len('.keras')]}.tmp-{os.getpid()}.keras")
    try:
        model.save(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def copy_atomic(src, dst):
    tmp = os.path.join(os.path.dirname(dst) or ".", f".{os.path.basename(dst)}.tmp-{os.getpid()}")
    shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


class AtomicBackupAndRestore(keras.callbacks.BackupAndRestore):
    """`BackupAndRestore` whose two files are each replaced atomically.

    Keras writes `latest.weights.h5` (model + optimizer state, so the step
    counter, LR schedule and EMA resume) and `training_metadata.json` in place:
    a kill during the write leaves a file that cannot be read. Here both are
    written to temporary names first; the weights are swapped in before the
    metadata, so the worst case after a kill between the two renames is one
    epoch redone, never a corrupt backup.
    """

    def _save_model(self):
        os.makedirs(self.backup_dir, exist_ok=True)
        tmp_weights = os.path.join(self.backup_dir, f"tmp-{os.getpid()}.weights.h5")
        self.model.save_weights(tmp_weights, overwrite=True)
        meta = {"epoch": self._current_epoch, "batch": self._last_batch_seen}
        tmp_meta = os.path.join(self.backup_dir, f".training_metadata.tmp-{os.getpid()}")
        with open(tmp_meta, "w") as f:
            json.dump(meta, f)
        os.replace(tmp_weights, self._weights_path)
        os.replace(tmp_meta, self._training_metadata_path)


class ThroughputMeter(keras.callbacks.Callback):
    """Training images/s per epoch (validation time excluded), added to the logs."""

    def __init__(self, global_batch_size):
        super().__init__()
        self.global_batch_size = global_batch_size
        self.rates = []
        self._start = None
        self._elapsed = None

    def on_epoch_begin(self, epoch, logs=None):
        self._start, self._elapsed = time.perf_counter(), None

    def on_test_begin(self, logs=None):
        if self._start is not None and self._elapsed is None:
            self._elapsed = time.perf_counter() - self._start

    def on_epoch_end(self, epoch, logs=None):
        if self._elapsed is None:
            self._elapsed = time.perf_counter() - self._start
        rate = self.params["steps"] * self.global_batch_size / max(self._elapsed, 1e-9)
        self.rates.append(rate)
        if logs is not None:
            logs["images_per_sec"] = rate

    def steady_rate(self):
        """Mean rate, leaving out the first epoch (graph tracing) when possible."""
        rates = self.rates[1:] or self.rates
        return sum(rates) / len(rates) if rates else 0.0


class EMACheckpoint(keras.callbacks.Callback):
    """Saves last.keras and best.keras (EMA weights) and a small state file.

    The saved model is `inference_model` (float32, plain BatchNorm, no
    optimizer) loaded with the training model's EMA weights, so the files are
    ready to evaluate and export. `best.keras` follows `monitor` (validation
    accuracy, measured by Keras on the EMA weights via `SwapEMAWeights`).
    `train_state.json` keeps the best value across restarts.
    """

    def __init__(self, model_dir, inference_model, write, monitor="val_accuracy"):
        super().__init__()
        self.model_dir = model_dir
        self.inference_model = inference_model
        self.write = write
        self.monitor = monitor
        self.last_path = os.path.join(model_dir, "last.keras")
        self.best_path = os.path.join(model_dir, "best.keras")
        self.state_path = os.path.join(model_dir, "train_state.json")
        self.state = {"best": None, "best_epoch": None, "epochs_completed": 0, "history": []}

    def on_train_begin(self, logs=None):
        if os.path.exists(self.state_path):
            with open(self.state_path) as f:
                self.state.update(json.load(f))

    def copy_ema_weights(self):
        """Loads the training model's EMA weights into the inference model."""
        values = recipe.ema_weights(self.model)
        targets = self.inference_model.weights
        if len(values) != len(targets) or any(
                tuple(v.shape) != tuple(t.shape) for v, t in zip(values, targets)):
            raise ValueError("Inference model does not match the training model's weights.")
        self.inference_model.set_weights(values)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        value = logs.get(self.monitor, logs.get(self.monitor.replace("val_", "")))
        record = {"epoch": epoch + 1, **{k: float(v) for k, v in logs.items()}}
        history = [h for h in self.state["history"] if h["epoch"] < epoch + 1] + [record]
        improved = value is not None and (self.state["best"] is None or value > self.state["best"])
        if improved:
            self.state.update(best=float(value), best_epoch=epoch + 1)
        self.state.update(epochs_completed=epoch + 1, history=history)
        if not self.write:
            return
        self.copy_ema_weights()
        save_model_atomic(self.inference_model, self.last_path)
        if improved or not os.path.exists(self.best_path):
            copy_atomic(self.last_path, self.best_path)
        write_text_atomic(self.state_path, json.dumps(self.state, indent=2))
