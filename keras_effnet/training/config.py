"""Experiment configuration: the whole run, its flags and its differences.

One `ExperimentConfig` (four sections, each a frozen dataclass validated on
construction: `sections`) describes a run. `keras-effnet train` fills it from flags;
`train()` resolves every "auto" value against the dataset and the strategy
(`resolve`) and dumps the result to `model_dir/config.json`, so a run can be
read back (`ExperimentConfig.from_dict`) and compared when it resumes.
"""

import dataclasses
import json

from keras_effnet.data import AUGMENTATIONS, parse_augment  # noqa: F401  (re-exported)
from keras_effnet.errors import ConfigError  # noqa: F401  (the same class, kept importable here)
from keras_effnet.training.sections import (
    DataConfig,
    ModelConfig,
    OptimizerConfig,
    RunConfig,
    fail,
)

# Fields that may change between a run and its resumption (where and how fast
# it runs, not what it computes).
RUNTIME_FIELDS = (
    "run.strategy",
    "run.cpu_devices",
    "run.verbose",
    "run.jit_compile",
    "data.data_dir",
)


_SECTIONS = {
    "data": DataConfig,
    "model": ModelConfig,
    "optimizer": OptimizerConfig,
    "run": RunConfig,
}


@dataclasses.dataclass(frozen=True)
class ExperimentConfig:
    """A whole run: data, model, optimizer recipe and runtime."""

    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    optimizer: OptimizerConfig = OptimizerConfig()
    run: RunConfig = RunConfig()

    def to_dict(self):
        return dataclasses.asdict(self)

    def to_json(self):
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, values):
        """Builds a config from `to_dict()` output; unknown keys are errors."""
        sections = {}
        for key, value in values.items():
            if key not in _SECTIONS:
                fail("config section", key, f"one of {sorted(_SECTIONS)}")
            section = _SECTIONS[key]
            names = {f.name for f in dataclasses.fields(section)}
            unknown = sorted(set(value) - names)
            if unknown:
                fail(f"{key} config keys", unknown, f"a subset of {sorted(names)}")
            sections[key] = section(**value)
        return cls(**sections)

    def replace(self, **sections):
        """`replace(data={"image_size": 64})`: a copy with some fields changed."""
        changed = {}
        for key, updates in sections.items():
            if key not in _SECTIONS:
                fail("config section", key, f"one of {sorted(_SECTIONS)}")
            changed[key] = dataclasses.replace(getattr(self, key), **updates)
        return dataclasses.replace(self, **changed)


def config_differences(old, new, ignore=RUNTIME_FIELDS):
    """Lists "section.field: old -> new" for fields that differ (minus `ignore`)."""
    diffs = []
    old_d, new_d = old.to_dict(), new.to_dict()
    for section in _SECTIONS:
        for key in sorted(set(old_d[section]) | set(new_d[section])):
            name = f"{section}.{key}"
            a, b = old_d[section].get(key), new_d[section].get(key)
            if name not in ignore and a != b:
                diffs.append(f"{name}: {a!r} -> {b!r}")
    return diffs


# Flat flag name -> (section, field): the command-line surface of a config.
FLAG_FIELDS = {
    "dataset": ("data", "dataset"),
    "data_dir": ("data", "data_dir"),
    "image_size": ("data", "image_size"),
    "batch_size": ("data", "batch_size"),
    "augment": ("data", "augment"),
    "crop_min_area": ("data", "crop_min_area"),
    "randaugment_magnitude": ("data", "randaugment_magnitude"),
    "mixup_alpha": ("data", "mixup_alpha"),
    "cache": ("data", "cache"),
    "progressive": ("data", "progressive"),
    "progressive_stages": ("data", "progressive_stages"),
    "progressive_start_size": ("data", "progressive_start_size"),
    "model": ("model", "name"),
    "width": ("model", "width"),
    "depth": ("model", "depth"),
    "weights": ("model", "weights"),
    "dropout_rate": ("model", "dropout_rate"),
    "drop_connect_rate": ("model", "drop_connect_rate"),
    "sync_bn": ("model", "sync_bn"),
    "freeze_bn": ("model", "freeze_bn"),
    "head_epochs": ("model", "head_epochs"),
    "recipe": ("optimizer", "recipe"),
    "bn_images": ("optimizer", "bn_images"),
    "optimizer": ("optimizer", "name"),
    "base_lr": ("optimizer", "base_lr"),
    "lr_batch_size": ("optimizer", "lr_batch_size"),
    "lr_schedule": ("optimizer", "schedule"),
    "warmup_epochs": ("optimizer", "warmup_epochs"),
    "decay_rate": ("optimizer", "decay_rate"),
    "decay_epochs": ("optimizer", "decay_epochs"),
    "rho": ("optimizer", "rho"),
    "momentum": ("optimizer", "momentum"),
    "epsilon": ("optimizer", "epsilon"),
    "label_smoothing": ("optimizer", "label_smoothing"),
    "weight_decay": ("optimizer", "weight_decay"),
    "ema_momentum": ("optimizer", "ema_momentum"),
    "model_dir": ("run", "model_dir"),
    "epochs": ("run", "epochs"),
    "steps_per_epoch": ("run", "steps_per_epoch"),
    "strategy": ("run", "strategy"),
    "cpu_devices": ("run", "cpu_devices"),
    "precision": ("run", "precision"),
    "jit_compile": ("run", "jit_compile"),
    "seed": ("run", "seed"),
    "verbose": ("run", "verbose"),
    "eval_split": ("run", "eval_split"),
}


def config_from_flags(values):
    """Builds an `ExperimentConfig` from {flag name: value} (see `FLAG_FIELDS`).

    Flags absent from `values` keep their defaults; unknown names are errors.
    Empty strings for optional paths (data_dir, weights) mean None.
    """
    sections = {}
    for name, value in values.items():
        if name not in FLAG_FIELDS:
            fail("flag", name, f"one of {sorted(FLAG_FIELDS)}")
        section, field = FLAG_FIELDS[name]
        if field in ("data_dir", "weights") and value == "":
            value = None
        sections.setdefault(section, {})[field] = value
    return ExperimentConfig().replace(**sections)
