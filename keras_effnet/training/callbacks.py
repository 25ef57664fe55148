"""Callbacks that make a run survive being killed and evaluate what it saves."""

import csv
import io as _io
import json
import os
import time

import keras
import numpy as np

from keras_effnet import io, keras_internals
from keras_effnet.training import modeling, recipe


def seed_generators(model):
    """Every `keras.random.SeedGenerator` of the model's layers (dropout, stochastic depth)."""
    found = []
    for layer in keras_internals.flatten_layers(model, include_self=True):
        found += [g for g in keras_internals.seed_generators(layer) if g not in found]
    return found


def backup_metadata(backup_dir):
    """The backup's metadata (epoch, generator states, extra state); {} when there is none."""
    path = os.path.join(backup_dir, "training_metadata.json")
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        return json.load(f)


def backup_epoch(backup_dir):
    """Epochs the backup in `backup_dir` has completed (0 = none): where a resumed run starts."""
    return int(backup_metadata(backup_dir).get("epoch", 0))


class AtomicBackupAndRestore(keras.callbacks.BackupAndRestore):
    """`BackupAndRestore` that restores everything a step depends on, atomically.

    Keras saves the model and optimizer (step counter, so the LR schedule, and
    the EMA slots) but not the random generators of dropout and stochastic
    depth, so a resumed run drew other masks than an uninterrupted one. Their
    states go into the metadata file here; the input stream is resumed by
    the caller (`data.load_dataset(skip_examples=...)`). Keras also writes
    both files in place, so a kill during the write left a file that cannot
    be read: here each goes through a temporary name, weights first, so the
    worst case after a kill between the renames is one epoch redone.

    A later `fit` in the same process (the next stage of a progressive run)
    restores from memory what the files hold: the raw trainable weights as
    saved (Keras writes the EMA into the weights when a `fit` ends) and the
    epoch. Reading the files back took ~26 s per stage on 2 busy cores; the
    optimizer and generator states are still the saved ones in memory.

    Args:
        extra_state: optional callable returning a JSON-able dict saved in the
            metadata with each backup (the progressive stage of the epoch).
        Others: as `keras.callbacks.BackupAndRestore`.
    """

    def __init__(self, backup_dir, *, extra_state=None, **kwargs):
        super().__init__(backup_dir, **kwargs)
        self.extra_state = extra_state
        # (epoch, [(variable, raw value)]) of this process's last save, by variable: the
        # trainable set differs between head-only epochs and the rest (fitting.fit_stages).
        self._saved = None

    def _save_model(self):
        os.makedirs(self.backup_dir, exist_ok=True)
        meta = {
            "epoch": self._current_epoch,
            "batch": self._last_batch_seen,
            "seed_states": [
                np.asarray(g.state.numpy()).tolist() for g in seed_generators(self.model)
            ],
            **(self.extra_state() if self.extra_state else {}),
        }
        # Weights first, then the metadata that names their epoch: a kill in
        # between leaves new weights under the old epoch, which a resume redoes.
        io.save_weights_atomic(self.model, self._weights_path)
        io.write_json_atomic(self._training_metadata_path, meta)
        self._saved = (
            self._current_epoch,
            [(v, keras.ops.convert_to_numpy(v)) for v in self.model.trainable_variables],
        )

    def _load_model(self):
        if self._saved is not None:
            epoch, values = self._saved
            for variable, value in values:
                variable.assign(value)
            self.model._initial_epoch = epoch  # What Keras' _load_model sets from the file.
            return
        super()._load_model()
        if not os.path.exists(self._training_metadata_path):
            return
        with open(self._training_metadata_path) as f:
            states = json.load(f).get("seed_states")
        generators = seed_generators(self.model)
        if states is not None and len(states) == len(generators):
            for generator, state in zip(generators, states):
                generator.state.assign(np.asarray(state, dtype=generator.state.dtype))


# Bookkeeping our callbacks add to each epoch's logs for history.csv and
# train_state.json; the progress bar leaves them out (issue 21: it showed
# "stage: 0.0000e+00 - image_size: 96.0000").
LOG_ONLY = ("stage", "image_size", "train_time_s", "eval_time_s", "elapsed_time_s")


class ProgressBar(keras.callbacks.ProgbarLogger):
    """Keras' progress bar without the `LOG_ONLY` values; the last callback of a run."""

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, {k: v for k, v in (logs or {}).items() if k not in LOG_ONLY})


class ThroughputMeter(keras.callbacks.Callback):
    """Training images/s and seconds per epoch (evaluation excluded), added to the logs."""

    def __init__(self, global_batch_size):
        super().__init__()
        self.global_batch_size = global_batch_size
        self.rates = []
        self._start = None

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        elapsed = time.perf_counter() - self._start
        rate = self.params["steps"] * self.global_batch_size / max(elapsed, 1e-9)
        self.rates.append(rate)
        if logs is not None:
            logs.update(images_per_sec=rate, train_time_s=elapsed)

    def steady_rate(self):
        """Mean rate, leaving out the first epoch (graph tracing) when possible."""
        rates = self.rates[1:] or self.rates
        return sum(rates) / len(rates) if rates else 0.0


class EvaluateAndCheckpoint(keras.callbacks.Callback):
    """Evaluates and saves, every epoch, the weights the run will hand over.

    At each epoch end the training model's EMA weights are loaded into
    `inference_model` (float32, plain BatchNorm, no optimizer), its BatchNorm
    statistics are re-estimated on `bn_batches` (the moving averages belong
    to the raw weights, not their average), it is scored on `val_ds`
    (`val_loss`, `val_accuracy`, `val_top5` go into the epoch's logs) and
    saved as last.keras; best.keras follows `monitor`. The seconds this took
    before the save go into `eval_time_s`, and the seconds since `clock_start`
    (`time.perf_counter()` when the process started the run) into
    `elapsed_time_s`: wall time to each validation score, set-up, tracing and
    stage changes included. `train_state.json` and
    `history.csv` are rewritten from the kept history, so an epoch redone
    after a kill appears once.
    """

    def __init__(
        self,
        model_dir,
        inference_model,
        write,
        val_ds=None,
        bn_batches=None,
        monitor="val_accuracy",
        clock_start=None,
    ):
        super().__init__()
        self.clock_start = time.perf_counter() if clock_start is None else clock_start
        self.model_dir = model_dir
        self.inference_model = inference_model
        self.write = write
        self.val_ds = val_ds
        self.bn_batches = bn_batches
        self.monitor = monitor
        self.last_path = os.path.join(model_dir, "last.keras")
        self.best_path = os.path.join(model_dir, "best.keras")
        self.state_path = os.path.join(model_dir, "train_state.json")
        self.history_path = os.path.join(model_dir, "history.csv")
        self.state = {"best": None, "best_epoch": None, "epochs_completed": 0, "history": []}
        # Re-estimation runs the network in training mode (dropout, stochastic
        # depth): the same masks every epoch, whatever ran before, so a resumed
        # run re-estimates exactly as an uninterrupted one.
        self._generators = seed_generators(inference_model)
        self._initial_states = [np.asarray(g.state.numpy()) for g in self._generators]

    def on_train_begin(self, logs=None):
        if os.path.exists(self.state_path):
            with open(self.state_path) as f:
                self.state.update(json.load(f))

    def copy_ema_weights(self):
        """Loads the training model's EMA weights into the inference model."""
        values = recipe.ema_weights(self.model)
        targets = self.inference_model.weights
        if len(values) != len(targets) or any(
            tuple(v.shape) != tuple(t.shape) for v, t in zip(values, targets)
        ):
            raise ValueError("Inference model does not match the training model's weights.")
        self.inference_model.set_weights(values)
        if self.bn_batches is not None:
            for generator, state in zip(self._generators, self._initial_states):
                generator.state.assign(state)
            modeling.recalibrate_batch_norm(self.inference_model, self.bn_batches)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        start = time.perf_counter()
        self.copy_ema_weights()
        if self.val_ds is not None:
            scores = self.inference_model.evaluate(self.val_ds, verbose=0, return_dict=True)
            logs.update({f"val_{k}": float(v) for k, v in scores.items()})
        logs["eval_time_s"] = time.perf_counter() - start
        logs["elapsed_time_s"] = time.perf_counter() - self.clock_start
        value = logs.get(self.monitor, logs.get(self.monitor.replace("val_", "")))
        record = {"epoch": epoch + 1, **{k: float(v) for k, v in logs.items()}}
        history = [h for h in self.state["history"] if h["epoch"] < epoch + 1] + [record]
        improved = value is not None and (self.state["best"] is None or value > self.state["best"])
        if improved:
            self.state.update(best=float(value), best_epoch=epoch + 1)
        self.state.update(epochs_completed=epoch + 1, history=history)
        if not self.write:
            return
        io.save_model_atomic(self.inference_model, self.last_path)
        if improved or not os.path.exists(self.best_path):
            io.copy_atomic(self.last_path, self.best_path)
        io.write_text_atomic(self.history_path, history_csv(history))
        io.write_text_atomic(self.state_path, json.dumps(self.state, indent=2))


def history_csv(history):
    """Per-epoch records as CSV, epochs counted from 0 like Keras' CSVLogger."""
    keys = sorted({k for h in history for k in h if k != "epoch"})
    out = _io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["epoch", *keys])
    for h in history:
        writer.writerow([h["epoch"] - 1, *(repr(h[k]) if k in h else "" for k in keys)])
    return out.getvalue()


class TensorBoard(keras.callbacks.TensorBoard):
    """Keras' TensorBoard callback, reusable across the `fit` calls of a progressive run.

    Keras closes its summary writers at the end of `fit` but keeps them, so a
    second `fit` with the same callback writes to a closed writer; here each
    `fit` opens new ones (same directories: TensorBoard reads them as one run).
    """

    def on_train_begin(self, logs=None):
        self._writers = {}
        super().on_train_begin(logs)
