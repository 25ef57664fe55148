"""measurement: the flags shared by `keras-effnet study` and `keras-effnet grid-search`.

`define_own` defines each job's own flags from its config class (StudyConfig,
GridConfig); `define` the shared ones, generated from the
`keras_effnet.study.MeasureSettings` fields (their help in
the field metadata, `keras_effnet.config_flags`), each default taken from the
job's own config class (GridConfig and StudyConfig differ). `--num_threads`
keeps `--threads` as an alias.
"""

import dataclasses

from keras_effnet.config_flags import define as _define
from keras_effnet.config_flags import module_name, specs
from keras_effnet.study import MeasureSettings

# The `--help` group of these flags.
MODULE = module_name("measurement")


def define(config_class):
    """Defines the flags with `config_class`'s defaults; returns their `config_flags.Flags`."""
    return _define(MeasureSettings, defaults=config_class)


def define_own(config_class):
    """Defines the flags of `config_class`'s own fields (--models, --start, ...): a `Flags`."""
    shared = {f.name for f in dataclasses.fields(MeasureSettings)}
    return _define(
        config_class, only=[s.name for s in specs(config_class) if s.path[-1] not in shared]
    )


def values(measure_flags):
    """{field: parsed value} for the config constructor (lists become tuples)."""
    return measure_flags.field_values()
