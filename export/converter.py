"""SavedModel and TFLite conversion in every post-training mode.

Path (docs/export.md "Export: SavedModel and TFLite"): `model.export(dir, format="tf_saved_model")`, then
`tf.lite.TFLiteConverter.from_saved_model`. `from_keras_model` is avoided on
purpose: some TF/Keras 3 combinations break it.

Input contract: float32 RGB pixels 0..255, NHWC; the model normalizes
in-graph. By default the exported signature has a static batch of 1 (what
phones run, and what lets the converter fold shapes); `dynamic_batch=True`
keeps the batch dimension open, and LiteRT then needs
`interpreter.resize_tensor_input(...)` before `allocate_tensors()`.
"""

import contextlib
import os
import re
import tempfile

import numpy as np
import tensorflow as tf

# Internal API (loaded by tf.lite already): the MLIR quantizer call that is the converter's
# own calibrate-then-quantize step; only `quantize_calibrated` uses it.
from tensorflow.lite.python import convert as tf_convert

from keras_effnet import console, io
from keras_effnet.export import flatbuf
from keras_effnet.export import ranges as ranges_lib
from keras_effnet.export_modes import QUANTIZED_MODES, check_mode, resolve_io_type

_TF_TYPES = {"uint8": tf.uint8, "int8": tf.int8, "int16": tf.int16, "float32": tf.float32}


def is_savedmodel_dir(model):
    """True if `model` is a path to a SavedModel directory."""
    return isinstance(model, (str, os.PathLike)) and os.path.isfile(
        os.path.join(os.fspath(model), "saved_model.pb")
    )


def load_model(model):
    """Returns a Keras model from a model object or a `.keras` file path."""
    if isinstance(model, (str, os.PathLike)):
        return io.load_model(model)
    if not hasattr(model, "inputs") or not hasattr(model, "export"):
        raise ValueError(
            f"model: expected a Keras model or a .keras path, got {type(model).__name__}"
        )
    return model


def input_size(model):
    """(height, width) of a single-input NHWC model with a static size."""
    if len(model.inputs) != 1 or len(model.inputs[0].shape) != 4:
        raise ValueError(
            "model: expected one NHWC image input, got inputs "
            f"{[tuple(i.shape) for i in model.inputs]}"
        )
    height, width = model.inputs[0].shape[1:3]
    if height is None or width is None:
        raise ValueError(
            f"model: input height/width must be static, got {tuple(model.inputs[0].shape)}"
        )
    return int(height), int(width)


def _write_savedmodel(model, path, dynamic_batch):
    shape = tuple(model.inputs[0].shape[1:])
    batch = None if dynamic_batch else 1
    spec = tf.TensorSpec((batch,) + shape, tf.float32, name="image")
    model.export(path, format="tf_saved_model", input_signature=[spec], verbose=False)


@contextlib.contextmanager
def _savedmodel_dir(model, dynamic_batch):
    """Yields a SavedModel dir: `model` itself if it is one, else a temp export.

    Exporting costs seconds; callers converting one model to several modes
    export once with `export_savedmodel` and pass the directory.
    """
    if is_savedmodel_dir(model):
        yield os.fspath(model)
        return
    model = load_model(model)
    input_size(model)
    with tempfile.TemporaryDirectory(prefix="effnet-savedmodel-") as tmp:
        _write_savedmodel(model, tmp, dynamic_batch)
        yield tmp


def export_savedmodel(model, path, *, dynamic_batch=False, overwrite=False):
    """Exports a serving SavedModel to directory `path`, atomically.

    Args:
        model: Keras model or `.keras` path.
        path: Output directory; an empty or absent one. A non-empty one or a file
            is refused unless `overwrite` (then replaced whole, on success only).
        dynamic_batch: Keep the batch dimension open (default: batch 1).

    Returns:
        `path`. The serving signature takes `image` float32 (B, H, W, 3) 0..255.
    """
    model = load_model(model)
    input_size(model)
    with io.atomic_directory(path, overwrite=overwrite) as tmp:
        _write_savedmodel(model, tmp, dynamic_batch)
    return os.fspath(path)


def _representative(images):
    if images is None:
        return None
    images = np.asarray(images, np.float32)
    if images.ndim != 4 or len(images) == 0:
        raise ValueError(
            "representative_data: expected float32 images "
            f"(N, H, W, 3) with N > 0, got shape {images.shape}"
        )

    def gen():
        for i in range(len(images)):
            yield [images[i : i + 1]]

    return gen


def _run_converter(converter):
    try:
        with console.native_output_filtered():
            return converter.convert()
    except Exception as e:  # pylint: disable=broad-except
        text = str(e)
        if re.search(r"Flex|[Ss]elect TF|not supported by|TF Select", text):
            ops = sorted(set(re.findall(r"\btf\.([A-Z]\w+)", text)))
            raise ValueError(
                "model: conversion needs TensorFlow ops that are not TFLite builtins "
                f"{ops or ''} (Flex/select-TF ops are refused: Android LiteRT runs "
                f"builtins only). Converter said: {text.strip()[:600]}"
            ) from e
        raise


def _converter(saved_model_dir, mode, representative, io_type):
    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if mode == "fp32":
        return converter
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if mode == "fp16":
        converter.target_spec.supported_types = [tf.float16]
    elif mode in QUANTIZED_MODES:
        if representative is None:
            raise ValueError(
                f"representative_data: mode {mode!r} needs calibration images "
                "(float32 0..255 from the train split), got None"
            )
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [
            (
                tf.lite.OpsSet.TFLITE_BUILTINS_INT8
                if mode == "int8"
                else tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8
            )
        ]
        converter.inference_input_type = _TF_TYPES[io_type]
        converter.inference_output_type = _TF_TYPES[io_type]
    return converter


def convert(
    model,
    mode,
    representative_data=None,
    *,
    io_type=None,
    dynamic_batch=False,
    denylist=(),
    ranges="mse",
):
    """Converts a Keras model to TFLite bytes.

    Args:
        model: Keras model, `.keras` path, or a SavedModel directory from
            `export_savedmodel` (export once, convert to many modes).
        mode: "fp32", "fp16", "dynamic" (dynamic-range int8 weights), "int8"
            (full integer, per-channel weights) or "int16x8".
        representative_data: Calibration images, float32 (N, H, W, 3) 0..255 with
            the training preprocessing; required for int8 and int16x8.
        io_type: Input/output dtype of integer modes, see `resolve_io_type`.
        dynamic_batch: Keep the batch dimension open (default: batch 1).
        denylist: int8 only: output tensor names of nodes kept in float (from
            the quantization debugger's layer report).
        ranges: int8 only: activation ranges, "mse" (calibration's min/max
            narrowed to minimise quantization error, `ranges.mse_ranges`; the
            default) or "minmax" (calibration's min/max as recorded).

    Returns:
        The .tflite flatbuffer bytes (no metadata yet).

    Raises:
        ValueError: unknown mode/io_type, missing calibration data, or a model
            that needs non-builtin ops.
    """
    check_mode(mode)
    if mode == "savedmodel":
        raise ValueError("mode: 'savedmodel' is not a TFLite mode; use export_savedmodel()")
    io_type = resolve_io_type(mode, io_type)
    denylist = tuple(denylist or ())
    if denylist and mode != "int8":
        raise ValueError(f"denylist: only mode 'int8' keeps nodes in float, got mode {mode!r}")
    representative = _representative(representative_data)
    if mode in QUANTIZED_MODES and representative is None:
        raise ValueError(
            f"representative_data: mode {mode!r} needs calibration images "
            "(float32 0..255 from the train split), got None"
        )
    if ranges not in ranges_lib.RANGES:
        raise ValueError(f"ranges: expected one of {ranges_lib.RANGES}, got {ranges!r}")
    if mode == "int8" and (denylist or ranges != "minmax"):
        calibrated = calibrate(model, representative_data, dynamic_batch=dynamic_batch)
        if ranges == "mse":
            calibrated, _ = ranges_lib.mse_ranges(calibrated, representative_data)
        return quantize_calibrated(calibrated, io_type, denylist=denylist)
    with _savedmodel_dir(model, dynamic_batch) as saved:
        result = _run_converter(_converter(saved, mode, representative, io_type))
    if mode == "int8":
        result = pin_pixel_input(result)
    return result


def calibrate(model, representative_data, *, dynamic_batch=False):
    """Returns a float .tflite carrying calibration ranges (not yet quantized).

    Calibration is the slow part of int8 conversion; this result feeds
    `quantize_calibrated` any number of times (different denylists) and the
    quantization debugger.
    """
    representative = _representative(representative_data)
    if representative is None:
        raise ValueError("representative_data: calibration needs images, got None")
    with _savedmodel_dir(model, dynamic_batch) as saved:
        converter = _converter(saved, "int8", representative, "float32")
        converter._experimental_calibrate_only = True  # pylint: disable=protected-access
        return _run_converter(converter)


def quantize_calibrated(calibrated, io_type="uint8", *, denylist=(), numeric_verify=False):
    """Quantizes a calibrated model to int8, keeping `denylist` nodes in float.

    Args:
        calibrated: Bytes from `calibrate`.
        io_type: "uint8", "int8" or "float32".
        denylist: Output tensor names of nodes to keep in float.
        numeric_verify: Add NumericVerify debug ops (quantization debugger only).
    """
    io_type = resolve_io_type("int8", io_type)
    dtype = _TF_TYPES[io_type]
    with console.native_output_filtered():
        result = tf_convert.mlir_quantize(
            calibrated,
            disable_per_channel=False,
            # fully_quantize=False is what the converter itself passes; True
            # turns a uint8 interface into int8.
            fully_quantize=False,
            input_data_type=dtype if not numeric_verify else tf.float32,
            output_data_type=dtype if not numeric_verify else tf.float32,
            enable_numeric_verify=numeric_verify,
            denylisted_nodes=list(denylist) or None,
        )
    return result if numeric_verify else pin_pixel_input(result)


def pin_pixel_input(tflite_bytes):
    """Sets an integer image input's quantization to exactly 1 pixel per step.

    The calibrated input range is the min/max of the representative images
    (e.g. scale 0.99999 for 0..254.9). Clients of a uint8 model feed raw
    pixels (MediaPipe ignores NormalizationOptions then), so the input must
    mean value = pixel: scale 1 and zero point 0 (uint8) or -128 (int8). The
    kernels read scales at prepare time, so rewriting the params is exact.
    Float inputs are returned unchanged.
    """
    model = flatbuf.read_model(tflite_bytes)
    graph = model.subgraphs[0]
    changed = False
    for index in graph.inputs:
        tensor = graph.tensors[index]
        kind = flatbuf.type_name(tensor)
        scales, _ = flatbuf.quant_params(tensor)
        if kind not in ("UINT8", "INT8") or len(scales) != 1:
            continue
        tensor.quantization.scale = np.array([1.0], np.float32)
        tensor.quantization.zeroPoint = np.array([0 if kind == "UINT8" else -128], np.int64)
        changed = True
    return flatbuf.write_model(model) if changed else bytes(tflite_bytes)
