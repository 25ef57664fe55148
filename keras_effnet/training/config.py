"""Experiment configuration: the whole run, its flags and its differences.

One `ExperimentConfig` (four sections, each a frozen dataclass validated on
construction: `sections`) describes a run. `keras-effnet train` fills it from flags;
`train()` resolves every "auto" value against the dataset and the strategy
(`plan.resolve`: a `RunPlan`) and dumps it to `model_dir/config.json`, so a run can be
read back (`ExperimentConfig.from_dict`) and compared when it resumes.

The flags are generated from the sections' field metadata (`config_flags`), so
this module imports no TensorFlow: `keras-effnet train --help` imports it.
"""

import dataclasses
import json

from keras_effnet.augment_spec import AUGMENTATIONS, parse_augment  # noqa: F401  (re-exported)
from keras_effnet.config_flags import build, flag_fields, normalize
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
        """Builds a config from `to_dict()` output; unknown keys are errors.

        Old auto spellings (-1, 0: config.json of runs before auto became None)
        read as None, and fields added since (`FIELDS_ADDED`) take the value
        those runs had, so those runs resume.
        """
        sections = {}
        for key, value in values.items():
            if key not in _SECTIONS:
                fail("config section", key, f"one of {sorted(_SECTIONS)}")
            section = _SECTIONS[key]
            names = {f.name for f in dataclasses.fields(section)}
            unknown = sorted(set(value) - names)
            if unknown:
                fail(f"{key} config keys", unknown, f"a subset of {sorted(names)}")
            value = {**FIELDS_ADDED.get(key, {}), **value}
            sections[key] = section(**normalize(section, value))
        return cls(**sections)

    def replace(self, **sections):
        """`replace(data={"image_size": 64})`: a copy with some fields changed."""
        changed = {}
        for key, updates in sections.items():
            if key not in _SECTIONS:
                fail("config section", key, f"one of {sorted(_SECTIONS)}")
            changed[key] = dataclasses.replace(getattr(self, key), **updates)
        return dataclasses.replace(self, **changed)


# Fields added to a section since runs were first recorded -> what those runs used.
FIELDS_ADDED = {"model": {"stem_strides": 2}}


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


def config_from_flags(values):
    """Builds an `ExperimentConfig` from {flag name: value} (the flags of `keras-effnet train`).

    Flags absent from `values` keep their defaults; unknown names are errors.
    Empty strings for optional paths (data_dir, weights) mean None; "auto" and
    the old spellings of auto (-1, 0) mean None.
    """
    names = flag_fields(ExperimentConfig)
    unknown = sorted(set(values) - set(names))
    if unknown:
        fail("flag", unknown[0], f"one of {sorted(names)}")
    values = {
        name: None if value == "" and names[name] in _OPTIONAL_PATHS else value
        for name, value in values.items()
    }
    return build(ExperimentConfig, values)


_OPTIONAL_PATHS = (("data", "data_dir"), ("model", "weights"))
