"""One library entry for every export: `export(model, mode, output, options)`.

Post-training modes go through `pipeline.export_tflite`; "qat" through
quantization-aware training (`quant.qat`); `options.prune` first prunes the
model (`quant.prune`), then exports it in `mode` (with "qat": pruning-preserving
QAT). `keras-effnet export` only parses flags into `ExportOptions`.
"""

import dataclasses
import os

from keras_effnet import export_modes, runs
from keras_effnet.export import converter, pipeline
from keras_effnet.export import options as options_lib
from keras_effnet.export.options import ExportOptions
from keras_effnet.export.quant import prune, qat

__all__ = ["QAT", "ExportOptions", "export"]

# The mode `export` adds to `export_modes.MODES`.
QAT = "qat"


def export(model, mode: str, output, options: ExportOptions | None = None) -> dict:
    """Exports `model` in `mode` to `output`, verified, with metadata.

    Args:
        model: a Keras model or a `.keras` path (the float reference).
        mode: one of `export_modes.MODES` or "qat".
        output: destination path (a directory for "savedmodel").
        options: `ExportOptions` (None = defaults). Its data and labels are
            resolved here (`_resolve_data`), then it travels whole.

    Returns:
        The verification report (also written to `<output>.verify.json`).
    """
    options = options_lib.resolve(options)
    if mode != QAT:
        export_modes.check_mode(mode)
    model, options = _resolve_data(model, options)
    if mode == QAT:
        return qat.export_qat(model, output, options)
    if options.prune is not None:
        return prune.export_pruned(model, mode, output, options)
    return pipeline.export_tflite(model, mode, output, options)


def _resolve_data(model, options):
    """(Keras model, options with dataset, data_dir and labels resolved from the model's run)."""
    path = model if isinstance(model, (str, os.PathLike)) else None
    keras_model = converter.load_model(model)
    classes = int(keras_model.outputs[0].shape[-1])
    run = runs.find_run(path)
    dataset, data_dir = options.dataset, options.data_dir
    if dataset is None or isinstance(dataset, str):
        choice = runs.resolve_data(path, classes, dataset, data_dir, run)
        dataset, data_dir = choice.dataset, choice.data_dir
    labels = options.labels
    if labels is None:
        labels = runs.default_labels(run, classes)
    return keras_model, dataclasses.replace(
        options, dataset=dataset, data_dir=data_dir, labels=labels
    )
