"""The run directory: one writer, a run's identity, finished runs left alone.

docs/training.md "The run directory, and runs that survive" and "Output policy":
- `claim` takes the directory's OS lock (`io.lock_directory`: a second writer
  gets one line naming the PID that holds it) and, when this process created
  the directory and the run is refused before its first epoch, removes it again;
- `check_resume` compares the run found there with the new one before anything
  is written: paths are not part of a run's identity (a moved or copied
  directory resumes), its dataset's class names and split sizes are;
- `finished` reads a finished run's results, so rerunning it changes no file.
"""

import contextlib
import json
import os
import re
import shutil

from keras_effnet import io
from keras_effnet.errors import ConfigError
from keras_effnet.training.config import RUNTIME_FIELDS, ExperimentConfig, config_differences


@contextlib.contextmanager
def claim(model_dir, lock_dir):
    """Creates and locks the run directory for this process's whole run.

    Args:
        model_dir: the run directory.
        lock_dir: the directory whose `.lock` this process takes (`model_dir`
            for the chief; a worker's own backup directory otherwise, since the
            workers of one multi-worker run share `model_dir`).

    Raises:
        OutputError: another process holds the lock, or the file system refuses.
    """
    if os.path.exists(model_dir) and not os.path.isdir(model_dir):
        raise ConfigError(
            f"`model_dir` exists and is not a directory. Received: model_dir={model_dir!r}"
        )
    created = not os.path.exists(model_dir)
    if not created and lock_dir == model_dir:
        _refuse_foreign_files(model_dir)
    io.makedirs(lock_dir, "model_dir")
    lock = io.lock_directory(lock_dir)
    try:
        yield
    except ConfigError:
        # A run refused before its first epoch leaves no trace in a directory it made; once an
        # epoch is saved the directory holds a run, and a later refusal never deletes it.
        trained = any(
            os.path.exists(os.path.join(model_dir, name)) for name in ("last.keras", "backup")
        )
        if created and lock_dir == model_dir and not trained:
            shutil.rmtree(model_dir, ignore_errors=True)
        raise
    finally:
        lock.release()


def _refuse_foreign_files(model_dir):
    """A non-empty directory that holds no run is the user's: never train into it."""
    if os.path.exists(os.path.join(model_dir, "config.json")):
        return
    others = sorted(
        name
        for name in os.listdir(model_dir)
        if name != ".lock"
        and not name.startswith(io.TEMP_PREFIX)
        # Another worker of the same multi-worker run may claim its backup first.
        and not re.fullmatch(r"backup_worker\d+", name)
    )
    if others:
        raise ConfigError(
            f"`model_dir` is a non-empty directory that holds no run (it has {others[0]!r}"
            f"{' and more' if len(others) > 1 else ''}, and no config.json); use a new or "
            f"empty directory. Received: model_dir={model_dir!r}"
        )


def _identity(config, dataset_kind):
    """The config as compared on resume: paths reduced to what they name."""
    values = config.to_dict()
    if dataset_kind == "folder":  # The folder's content is compared instead.
        values["data"]["dataset"] = "<folder>"
    weights = values["model"]["weights"]
    if weights and os.path.basename(weights) != weights and not weights.startswith("timm:"):
        values["model"]["weights"] = os.path.basename(os.path.normpath(weights))
    return ExperimentConfig.from_dict(values)


def check_resume(model_dir, run_plan, class_names):
    """Whether `model_dir` holds this run (a `plan.RunPlan`) to resume; refuses another run.

    Nothing is written before the check. The recorded run is read from
    config.json ("derived" as `RunPlan.to_dict` writes it, or an older run's).

    Returns:
        True when a backup of the same run is there (resume), False for a new run.

    Raises:
        ConfigError: the directory holds a run with another configuration, or
            the dataset changed (class names or split sizes).
    """
    path = os.path.join(model_dir, "config.json")
    backup = os.path.join(model_dir, "backup", "training_metadata.json")
    if not (os.path.exists(path) and os.path.exists(backup)):
        return False
    with open(path) as f:
        recorded = json.load(f)
    previous = ExperimentConfig.from_dict(recorded["config"])
    old_derived = recorded.get("derived", {})
    ignore = (*RUNTIME_FIELDS, "run.model_dir")
    diffs = config_differences(
        _identity(previous, old_derived.get("dataset_kind")),
        _identity(run_plan.config, run_plan.dataset_kind),
        ignore=ignore,
    )
    labels_path = os.path.join(model_dir, "labels.txt")
    if os.path.exists(labels_path):
        with open(labels_path) as f:
            old_names = [line.rstrip("\n") for line in f if line.strip()]
        if old_names != list(class_names):
            added = sorted(set(class_names) - set(old_names))
            removed = sorted(set(old_names) - set(class_names))
            diffs.append(
                f"dataset classes: {len(old_names)} -> {len(class_names)}"
                + (f" (added {added})" if added else "")
                + (f" (removed {removed})" if removed else "")
            )
    splits = dict(run_plan.splits)
    if old_derived.get("splits") and old_derived["splits"] != splits:
        diffs.append(f"dataset split sizes: {old_derived['splits']} -> {splits}")
    if diffs:
        raise ConfigError(
            f"model_dir {model_dir!r} holds a run with a different configuration "
            f"({'; '.join(diffs)}). Nothing was changed there. Use a new --model_dir (start "
            f"from its weights with --weights={os.path.join(model_dir, 'last.keras')}) or "
            f"delete the old one."
        )
    return True


def finished(model_dir, epochs):
    """The recorded results of a run that completed `epochs` epochs, else None."""
    results = os.path.join(model_dir, "results.json")
    state = os.path.join(model_dir, "train_state.json")
    if not (os.path.exists(results) and os.path.exists(state)):
        return None
    with open(state) as f:
        if json.load(f).get("epochs_completed", 0) < epochs:
            return None
    with open(results) as f:
        return json.load(f)
