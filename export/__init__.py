"""SavedModel and TFLite export for keras-effnet (ships as keras_effnet.export).

Typical use::

    from keras_effnet import export
    report = export.export("runs/b0/best.keras", "int8", "b0_int8.tflite",
                           export.ExportOptions(dataset="digits", labels="labels.txt"))

`export` covers every mode, "qat" and pruning (`ExportOptions.prune`);
`export_tflite` is the post-training pipeline it calls.

Building blocks: `export_savedmodel`, `convert`, `calibrate`,
`quantize_calibrated`, `op_census` / `check_integer_only`, `verify` /
`verify_arrays` (a `Verification` with its `Score`), `layer_report` /
`search_denylist`, `GuardResult` (the int8 guard's verdict), `add_metadata`,
`finish_tflite`.
"""

import importlib

# name -> the submodule that defines it. Imported on first use (PEP 562), so importing
# `keras_effnet.export.options` (the command's flags, `--help`) does not import TensorFlow.
_LAZY = {
    "check_builtin_only": "census",
    "check_integer_only": "census",
    "op_census": "census",
    "calibrate": "converter",
    "convert": "converter",
    "export_savedmodel": "converter",
    "quantize_calibrated": "converter",
    "layer_report": "debug",
    "search_denylist": "debug",
    "export": "entry",
    "GuardResult": "guard",
    "add_metadata": "metadata",
    "read_metadata": "metadata",
    "ExportOptions": "options",
    "export_tflite": "pipeline",
    "finish_tflite": "pipeline",
    "report_path": "pipeline",
    "Score": "verification",
    "Verification": "verification",
    "format_table": "verification",
    "latency": "verification",
    "run_tflite": "verification",
    "verify": "verification",
    "verify_arrays": "verification",
    "verify_savedmodel": "verification",
    "verify_savedmodel_arrays": "verification",
}


def __getattr__(name):
    if name in ("MODES", "TFLITE_MODES"):
        return getattr(importlib.import_module("keras_effnet.export_modes"), name)
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))


__all__ = [
    "ExportOptions",
    "GuardResult",
    "Score",
    "Verification",
    "export",
    "MODES",
    "TFLITE_MODES",
    "add_metadata",
    "calibrate",
    "check_builtin_only",
    "check_integer_only",
    "convert",
    "export_savedmodel",
    "export_tflite",
    "finish_tflite",
    "format_table",
    "latency",
    "layer_report",
    "op_census",
    "quantize_calibrated",
    "read_metadata",
    "report_path",
    "run_tflite",
    "search_denylist",
    "verify",
    "verify_arrays",
    "verify_savedmodel",
    "verify_savedmodel_arrays",
]
