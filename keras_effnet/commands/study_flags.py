"""measurement: the flags shared by `keras-effnet study` and `keras-effnet grid-search`.

Generated from the `keras_effnet.study.MeasureSettings` fields (their help in
the field metadata, `keras_effnet.config_flags`), each default taken from the
job's own config class (GridConfig and StudyConfig differ). `--num_threads`
keeps `--threads` as an alias.
"""

from keras_effnet.config_flags import define as _define
from keras_effnet.config_flags import module_name
from keras_effnet.study import MeasureSettings

# The `--help` group of these flags.
MODULE = module_name("measurement")


def define(config_class):
    """Defines the flags with `config_class`'s defaults; returns their `config_flags.Flags`."""
    return _define(MeasureSettings, defaults=config_class)


def values(measure_flags):
    """{field: parsed value} for the config constructor (lists become tuples)."""
    return measure_flags.field_values()
