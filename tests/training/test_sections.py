"""training/sections/, probed as issue 20 asked: every bad value of every train flag, by name.

Each case builds a config from flags as scripts/train.py does and must raise one
`ConfigError` whose single line names the flag (the CLI prints it and exits 2);
zero and negative values are refused unless the flag's help gives them a
meaning (0 = off; "auto" is None, and the old spellings 0 / -1 of auto still
read as None). Cheap: no TensorFlow work.
"""

import pytest

from keras_effnet.training import config as config_lib
from keras_effnet.training.config import ConfigError

BAD = {
    "image_size": [-1, 5, 31, 1.5, "64"],
    "batch_size": [0, -1, 2.5],
    "crop_min_area": [0.0, 1.5, -0.5],
    "randaugment_magnitude": [0.0, 1.5, -1.0],
    "mixup_alpha": [0.0, -1.0],
    "progressive": ["maybe", ""],
    "progressive_stages": [-1, 1.5],
    "progressive_start_size": [16, -1],
    "model": ["b9", "resnet", ""],
    "width": [-1.0, 11.0],
    "depth": [-1.0, 11.0],
    "dropout_rate": [1.0, -0.5, 2.0],
    "drop_connect_rate": [1.0, -0.5],
    "head_epochs": [-2, 1.5],
    "recipe": ["fast", ""],
    "optimizer": ["adam", ""],
    "base_lr": [0.0, -0.1],
    "lr_batch_size": [-1, 1.5],
    "lr_schedule": ["linear"],
    "warmup_epochs": [-0.5],
    "decay_rate": [0.0, 1.5],
    "decay_epochs": [0.0, -1.0],
    "rho": [1.0, -0.1],
    "momentum": [1.0, -0.1],
    "epsilon": [0.0, 2.0],
    "label_smoothing": [1.0, -0.5],
    "weight_decay": [2.0, -0.5],
    "ema_momentum": [1.0, -0.5],
    "bn_images": [-2, 1.5],
    "epochs": [0, -1],
    "steps_per_epoch": [-1],
    "strategy": ["tpu"],
    "cpu_devices": [-1],
    "precision": ["float16"],
    "seed": [-1],
    "verbose": [3, -1],
    "eval_split": ["dev"],
    "augment": ["rotate", "crop,rotate"],
}
CASES = [(flag, value) for flag, values in BAD.items() for value in values]


@pytest.mark.parametrize("flag, value", CASES)
def test_every_bad_train_flag_is_one_line_naming_it(flag, value):
    with pytest.raises(ConfigError) as raised:
        config_lib.config_from_flags({"model_dir": "r", flag: value})
    message = str(raised.value)
    names = {"model": "model", "optimizer": "optimizer", "augment": "augment"}
    assert names.get(flag, flag) in message and "\n" not in message, message


@pytest.mark.parametrize(
    "flag, value",
    [
        ("image_size", 0),
        ("progressive_stages", 0),
        ("steps_per_epoch", 0),
        ("bn_images", 0),
        ("bn_images", -1),
        ("head_epochs", -1),
        ("ema_momentum", 0.0),
        ("cpu_devices", 0),
    ],
)
def test_documented_zero_and_auto_values_are_accepted(flag, value):
    config_lib.config_from_flags({"model_dir": "r", flag: value})


@pytest.mark.parametrize(
    "section, flag, field, value",
    [
        ("data", "image_size", "image_size", 0),
        ("data", "progressive_stages", "progressive_stages", 0),
        ("optimizer", "bn_images", "bn_images", -1),
        ("model", "head_epochs", "head_epochs", -1),
        ("model", "dropout_rate", "dropout_rate", -1.0),
        ("optimizer", "lr_batch_size", "lr_batch_size", 0),
        ("model", "freeze_bn", "freeze_bn", "auto"),
    ],
)
def test_old_spellings_of_auto_become_none(section, flag, field, value):
    config = config_lib.config_from_flags({"model_dir": "r", flag: value})
    assert getattr(getattr(config, section), field) is None


@pytest.mark.parametrize(
    "section, field, value",
    [("data", "image_size", 0), ("model", "head_epochs", -1), ("optimizer", "base_lr", -1.0)],
)
def test_the_dataclasses_take_none_for_auto_not_the_old_spellings(section, field, value):
    cls = type(getattr(config_lib.ExperimentConfig(), section))
    assert getattr(cls(), field) is None
    with pytest.raises(ConfigError, match=field):
        cls(**{field: value})
