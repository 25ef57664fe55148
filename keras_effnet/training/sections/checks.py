"""What the configuration sections share: the allowed names and the field checks."""

import math

from keras_effnet.errors import ConfigError

STRATEGIES = ("auto", "mirrored", "multi_worker", "one_device", "cpu")
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
SCHEDULES = ("exponential", "cosine", "constant")
OPTIMIZERS = ("adamw", "rmsprop", "sgd")
RECIPES = ("auto", "scratch", "finetune", "paper")
EVAL_SPLITS = ("auto", "train", "validation", "test")


def fail(name, value, expected):
    """Raises the `ConfigError` of a field: "`name` must be expected. Received: ..."."""
    raise ConfigError(f"`{name}` must be {expected}. Received: {name}={value!r}")


def is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def check_range(name, value, low, high, low_open=False, high_open=False):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        fail(name, value, "a number")
    too_low = value <= low if low_open else value < low
    too_high = value >= high if high_open else value > high
    if too_low or too_high:
        left, right = "(" if low_open else "[", ")" if high_open else "]"
        fail(name, value, f"in {left}{low}, {high}{right}")
