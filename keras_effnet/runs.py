"""What a model's own run says about it: data, image size and labels.

`train` writes `config.json` and `labels.txt` beside `best.keras` and
`last.keras` (see `keras_effnet.training.loop`). `evaluate`, `export` and
`predict` read them here, so a model found in its run directory needs no
`--dataset`, `--image_size` or `--labels` (issue 21, item 3: an export that
defaulted to the bundled digits calibrated and verified a 4-class photo model
on 10-class digits and exited 0).

The rules, in one place (`resolve_data`):
  1. an explicit dataset wins (its data_dir is the caller's, else the run's
     when the run used the same dataset);
  2. else the run's dataset and data_dir;
  3. else the bundled digits, only for a 10-class model;
  4. else one error asking for --dataset.
Every class count a command meets (the data's, the labels') is compared with
the model's output size by `check_classes`: a mismatch is one line.
"""

import dataclasses
import json
import os

from keras_effnet.errors import ConfigError

CONFIG_FILE = "config.json"
LABELS_FILE = "labels.txt"
DIGITS = "digits"
DIGITS_CLASSES = 10


@dataclasses.dataclass(frozen=True)
class RunInfo:
    """The run directory a model file lives in.

    Attributes:
        directory: the run directory (holds config.json).
        dataset: the dataset the model was trained on (name or folder).
        data_dir: its TFDS data directory, or None.
        image_size: the trained input side (0 when the run recorded none).
        labels: class names from labels.txt in output order, or None.
    """

    directory: str
    dataset: str
    data_dir: str | None
    image_size: int
    labels: tuple[str, ...] | None


@dataclasses.dataclass(frozen=True)
class DataChoice:
    """The data a command uses for a model, and why (`resolve_data`).

    Attributes:
        dataset: a dataset name or folder for `keras_effnet.data`.
        data_dir: TFDS data directory, or None.
        source: "flag", "run" or "digits default" (in `evaluate`'s result).
    """

    dataset: str
    data_dir: str | None
    source: str


def read_labels_file(path) -> list[str]:
    """Class names of a one-per-line file (trailing blank lines dropped)."""
    with open(path, encoding="utf-8") as f:
        labels = [line.rstrip("\r\n") for line in f]
    while labels and not labels[-1]:
        labels.pop()
    return labels


def find_run(model_path) -> RunInfo | None:
    """The `RunInfo` of the run directory holding `model_path`, or None.

    Args:
        model_path: a model file (.keras or .tflite) path, or None.

    Raises:
        ConfigError: config.json exists but is not readable JSON. Another
            tool's config.json (no "config"/"data" section) means no run.
    """
    if model_path is None or not isinstance(model_path, (str, os.PathLike)):
        return None
    directory = os.path.dirname(os.path.abspath(os.fspath(model_path)))
    config_path = os.path.join(directory, CONFIG_FILE)
    if not os.path.isfile(config_path):
        return None
    try:
        with open(config_path, encoding="utf-8") as f:
            values = json.load(f)
    except (OSError, ValueError) as e:
        raise ConfigError(
            f"{config_path} cannot be read ({type(e).__name__}: {e}); pass --dataset explicitly "
            "or move the model out of that directory"
        ) from None
    config = values.get("config") if isinstance(values, dict) else None
    data = config.get("data") if isinstance(config, dict) else None
    if not isinstance(data, dict) or not isinstance(data.get("dataset"), str):
        return None  # Another tool's config.json (a timm checkpoint's, say): not a run.
    dataset = data["dataset"]
    labels_path = os.path.join(directory, LABELS_FILE)
    labels = read_labels_file(labels_path) if os.path.isfile(labels_path) else None
    return RunInfo(
        directory=directory,
        dataset=dataset,
        data_dir=data.get("data_dir") or None,
        image_size=int(data.get("image_size") or 0),
        labels=tuple(labels) if labels else None,
    )


def check_classes(model_classes, count, what, model="the model", unit="classes") -> None:
    """Raises one-line `ConfigError` unless `count` (of `what`) equals the model's classes.

    Args:
        model_classes: the model's output size.
        count: the other class count (None: nothing to compare).
        what: what holds `count`, e.g. "dataset 'digits'" or "labels file 'x.txt'".
        model: how to name the model in the message.
        unit: what `count` counts ("classes" or "labels").
    """
    if count is not None and int(count) != int(model_classes):
        raise ConfigError(
            f"{model} outputs {model_classes} classes but {what} has {count} {unit}: "
            "pass the data or labels the model was trained with"
        )


def resolve_data(model_path, model_classes, dataset=None, data_dir=None, run=None) -> DataChoice:
    """Which data a command uses for a model (rules in the module doc).

    Args:
        model_path: the model file (its run directory is looked up), or None.
        model_classes: the model's output size.
        dataset, data_dir: what the user passed (None = not passed).
        run: a `RunInfo` already found (default: `find_run(model_path)`).

    Returns:
        A `DataChoice`.

    Raises:
        ConfigError: no dataset passed, no run beside the model and the model
            is not a 10-class (digits-sized) model.
    """
    run = run if run is not None else find_run(model_path)
    if dataset:
        if not data_dir and run is not None and run.dataset == dataset:
            data_dir = run.data_dir
        return DataChoice(dataset, data_dir or None, "flag")
    if run is not None:
        return DataChoice(run.dataset, data_dir or run.data_dir, "run")
    if int(model_classes) == DIGITS_CLASSES:
        return DataChoice(DIGITS, data_dir or None, "digits default")
    name = os.fspath(model_path) if model_path is not None else "the model"
    raise ConfigError(
        f"--dataset is required: {name} has {model_classes} classes and no "
        f"{CONFIG_FILE} beside it to say what it was trained on"
    )


def default_labels(run, model_classes) -> list[str] | None:
    """The run's labels for a model, checked against its class count (None: no run labels)."""
    if run is None or run.labels is None:
        return None
    path = os.path.join(run.directory, LABELS_FILE)
    check_classes(model_classes, len(run.labels), f"labels file {path!r}", unit="labels")
    return list(run.labels)
