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

from keras_effnet.export.census import check_builtin_only, check_integer_only, op_census
from keras_effnet.export.converter import calibrate, convert, export_savedmodel, quantize_calibrated
from keras_effnet.export.debug import layer_report, search_denylist
from keras_effnet.export.entry import export
from keras_effnet.export.guard import GuardResult
from keras_effnet.export.metadata import add_metadata, read_metadata
from keras_effnet.export.options import ExportOptions
from keras_effnet.export.pipeline import export_tflite, finish_tflite, report_path
from keras_effnet.export.verification import (
    Score,
    Verification,
    format_table,
    latency,
    run_tflite,
    verify,
    verify_arrays,
    verify_savedmodel,
    verify_savedmodel_arrays,
)
from keras_effnet.export_modes import MODES, TFLITE_MODES

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
