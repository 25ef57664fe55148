"""ExportOptions is the one set of export defaults: no export function repeats a field."""

import dataclasses
import inspect

import pytest

from keras_effnet import export
from keras_effnet.export import entry, options, pipeline
from keras_effnet.export.quant import prune, qat

_TAKE_OPTIONS = (
    entry.export,
    pipeline.export_tflite,
    pipeline.finish_tflite,
    prune.export_pruned,
    prune.prune_model,
    prune.prune_tf_keras,
    qat.quantization_aware_training,
    qat.export_qat,
    qat.finish_qat,
)


@pytest.mark.parametrize("function", _TAKE_OPTIONS, ids=lambda f: f.__qualname__)
def test_export_functions_take_the_options_whole(function):
    fields = {field.name for field in dataclasses.fields(export.ExportOptions)}
    parameters = inspect.signature(function).parameters
    assert "options" in parameters
    # A field repeated with a default would be a second default (issue 22: drift). Per-call
    # data may share a field's name (`dataset`: training arrays, `labels`: resolved names),
    # without a default.
    repeated = sorted(
        name
        for name in fields & set(parameters)
        if parameters[name].default is not inspect.Parameter.empty
    )
    assert not repeated, repeated


def test_options_are_importable_where_they_were_and_resolve_checks_the_type():
    assert export.ExportOptions is entry.ExportOptions is options.ExportOptions
    assert options.resolve(None) == export.ExportOptions()
    given = export.ExportOptions(num_calibration=3)
    assert options.resolve(given) is given
    with pytest.raises(ValueError, match="options: expected ExportOptions, got dict"):
        options.resolve({"num_calibration": 3})


def test_the_drifted_defaults_are_the_cli_ones():
    defaults = export.ExportOptions()
    assert defaults.num_calibration == 200  # qat.py had 256
    assert defaults.learning_rate == 3e-5  # prune.py had 1e-4
