"""The four sections of an experiment configuration, validated on construction.

`DataConfig`, `ModelConfig`, `OptimizerConfig` and `RunConfig` each check
their own fields (a bad value raises `ConfigError` naming the field);
`config.ExperimentConfig` holds one of each, and `config` also reads flags and
compares runs.

Every field carries its command-line flag in its metadata (`config_flags.option`:
help, `--help` section, the meaning of auto): `keras-effnet train`'s flags are
generated from these classes. "auto" is None (the recipe or the dataset
decides, `plan.resolve`); the enum fields recipe, optimizer, lr_schedule,
augment, progressive, strategy and eval_split keep "auto" as one of their
named choices.
"""

from keras_effnet.training.sections.checks import (  # noqa: F401  (the names used elsewhere)
    EVAL_SPLITS,
    OPTIMIZERS,
    PRECISIONS,
    RECIPES,
    SCHEDULES,
    STRATEGIES,
    fail,
)
from keras_effnet.training.sections.data import DataConfig
from keras_effnet.training.sections.model import ModelConfig
from keras_effnet.training.sections.optimizer import OptimizerConfig
from keras_effnet.training.sections.run import RunConfig

__all__ = ["DataConfig", "ModelConfig", "OptimizerConfig", "RunConfig", "fail"]
