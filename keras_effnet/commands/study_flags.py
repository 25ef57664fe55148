"""measurement: the flags shared by `keras-effnet study` and `keras-effnet grid-search`.

One flag per `keras_effnet.study.MeasureSettings` field, its default taken
from the job's own config class (GridConfig and StudyConfig differ).
"""

import dataclasses

from absl import flags

from keras_effnet import commands
from keras_effnet.study import MeasureSettings

_HELP = {
    "dataset": "digits, an image folder or a TFDS name.",
    "data_dir": "TFDS data directory.",
    "batch_size": "Training batch size.",
    "epochs": "Training epochs (0: --budget_seconds only).",
    "budget_seconds": "Training time budget after tracing (0 = none).",
    "base_lr": "RMSProp learning rate per 256 images.",
    "label_smoothing": "Label smoothing.",
    "seed": "Seed of init, shuffling, dropout.",
    "bn_images": "Training images for BN re-estimation before evaluation (0 = off).",
    "jit_compile": "XLA for training and Keras inference.",
    "tflite_modes": "LiteRT modes to convert and time (fp32, fp16, dynamic, int8, int16x8).",
    "threads": "LiteRT threads.",
    "latency_runs": "LiteRT timed runs.",
    "timing_iterations": "Keras latency: calls per timed round.",
    "timing_repeats": "Keras latency: timed rounds (median).",
    "timing_warmup": "Keras latency: warmup calls.",
    "interleaved": "Re-time all models in one process in alternating rounds.",
    "interleaved_repeats": "Rounds of the interleaved timing (median).",
    "timing_statistic": "Statistic over the interleaved rounds (min = best round).",
    "output_dir": "Output directory.",
    "isolate": "One fresh worker process per cell (honest memory figures).",
    "cell_timeout": "Seconds per cell.",
}
_ENUMS = {"timing_statistic": ["min", "median"]}
# Field -> flag name where the flag follows the other commands' name (issue 21); the
# field's own name stays an alias.
_FLAG_NAMES = {"threads": "num_threads"}


def define(config_class):
    """Defines the flags with `config_class`'s defaults; returns {field: flag holder}."""
    defaults = {f.name: f.default for f in dataclasses.fields(config_class)}
    holders = {}
    for field in dataclasses.fields(MeasureSettings):
        default, text = defaults[field.name], _HELP[field.name]
        name = _FLAG_NAMES.get(field.name, field.name)
        if name in _ENUMS:
            holders[field.name] = flags.DEFINE_enum(name, default, _ENUMS[name], text)
        elif isinstance(default, bool):
            holders[field.name] = flags.DEFINE_bool(name, default, text)
        elif isinstance(default, int):
            holders[field.name] = flags.DEFINE_integer(name, default, text)
        elif isinstance(default, float):
            holders[field.name] = flags.DEFINE_float(name, default, text)
        elif isinstance(default, tuple):
            holders[field.name] = flags.DEFINE_list(name, list(default), text)
        else:
            holders[field.name] = flags.DEFINE_string(name, default, text)
        if name != field.name:
            commands.define_old_name(field.name, name)
    return holders


def values(holders):
    """{field: parsed value} for the config constructor (lists become tuples)."""
    return {
        name: tuple(h.value) if isinstance(h.value, list) else h.value
        for name, h in holders.items()
    }
