"""The QAT graph: annotate, quantize, start ranges, convert.

Works on the flat tf_keras model from `translate.translate_model(...,
split_sigmoid=True)`; `qat.py` strings the steps together. Which quantizer
each layer gets (and why) is in `qat_configs`.

tfmot is imported inside functions only: importing it sets
TF_USE_LEGACY_KERAS=1 for the whole process.
"""

import tempfile

import numpy as np
import tensorflow as tf

from keras_effnet import export_modes
from keras_effnet.export.quant import qat_configs, translate
from keras_effnet.export.quant.qat_configs import OUTPUT_ONLY_LAYERS, qat_scope

IO_TYPES = export_modes.IO_TYPES["int8"]  # QAT converts to int8 only.
PIXEL_RANGE = (0.0, 255.0)


def annotate(tfk_model):
    """Annotates every layer of a flat tf_keras model for quantization.

    Layers in `OUTPUT_ONLY_LAYERS` get `OutputQuantizeConfig`, sigmoid
    Activation layers `SigmoidQuantizeConfig`, the rest the default 8-bit
    scheme's config (which rejects unknown layers by name).
    """
    quant = qat_configs.load_tfmot().quantization.keras
    import tf_keras  # Optional (the 'qat' extra); Keras 2, for tfmot only.

    output_only = qat_configs.output_quantize_config_class()
    sigmoid = qat_configs.sigmoid_quantize_config_class()

    def clone_fn(layer):
        if isinstance(layer, tf_keras.layers.InputLayer):
            return layer.__class__.from_config(layer.get_config())
        config = None
        if type(layer).__name__ in OUTPUT_ONLY_LAYERS:
            config = output_only()
        elif type(layer).__name__ == "Activation" and layer.get_config()["activation"] == "sigmoid":
            config = sigmoid()
        clone = layer.__class__.from_config(layer.get_config())
        return quant.quantize_annotate_layer(clone, config)

    annotated = tf_keras.models.clone_model(tfk_model, clone_function=clone_fn)
    annotated.set_weights(tfk_model.get_weights())
    translate.refresh_normalization(annotated)
    return annotated


def quantize(tfk_model, *, prune_preserve=False, input_range=PIXEL_RANGE):
    """Returns the fake-quantized (QAT) version of a flat tf_keras model.

    Args:
      tfk_model: From `translate.translate_model` (call inside the
        fine-tuning strategy's scope).
      prune_preserve: Use `Default8BitPrunePreserveQuantizeScheme` (keeps
        zeros of a stripped pruned model through QAT).
      input_range: (min, max) the input quantizer is pinned to; None lets it
        track the data.
    """
    quant = qat_configs.load_tfmot().quantization.keras
    annotated = annotate(tfk_model)
    with qat_scope():
        qat_model = quant.quantize_apply(annotated, scheme=qat_configs.scheme(prune_preserve))
    translate.refresh_normalization(qat_model)
    sync_weight_ranges(qat_model)
    if input_range is not None:
        pin_input_range(qat_model, input_range)
    return qat_model


def pin_input_range(qat_model, input_range=PIXEL_RANGE):
    """Sets the input quantizer's range (tracked ranges only widen from it)."""
    low, high = (float(v) for v in input_range)
    if not low <= 0.0 < high:
        raise ValueError(f"input_range: expected (min <= 0 < max), got {input_range!r}")
    found = 0
    for layer in qat_model.layers:
        if type(layer).__name__ == "QuantizeLayer":
            layer.quantizer_vars["min_var"].assign(low)
            layer.quantizer_vars["max_var"].assign(high)
            found += 1
    if not found:
        raise ValueError("qat_model: no input QuantizeLayer to pin")


def sync_weight_ranges(qat_model):
    """Sets every weight quantizer's range from the current weights.

    tfmot's weight quantizers store the range they saw in the last training
    step, and inference (and so the converter) uses the stored range: right
    after `quantize_apply` it is tfmot's [-6, 6] placeholder (or zeros), and
    after fine-tuning it lags the final optimizer update by one step. Running
    each quantizer once in training mode on its weight fixes both.
    """
    count = 0
    for wrapper in qat_model.layers:
        for weight, quantizer, variables in getattr(wrapper, "_weight_vars", ()):
            quantizer(weight, True, variables)
            count += 1
    return count


def _range_targets(qat_model):
    """[(min/max variable dict, float layer name, "out" | "pre")].

    Reads tfmot 0.8 wrapper internals (`_output_quantizer_vars`,
    `_quantize_activations[i]._pre/_post_activation_vars`); pinned by
    tests/export/test_qat.py.
    """
    targets = []
    for wrapper in qat_model.layers:
        inner = getattr(wrapper, "layer", None)
        if inner is None:
            continue
        out_vars = getattr(wrapper, "_output_quantizer_vars", None)
        if getattr(wrapper, "_output_quantizers", None) and out_vars:
            targets.append((out_vars, inner.name, "out"))
        for act in getattr(wrapper, "_quantize_activations", ()):
            if hasattr(act, "_pre_activation_vars"):
                targets.append((act._pre_activation_vars, inner.name, "pre"))  # pylint: disable=protected-access
            if hasattr(act, "_post_activation_vars"):
                targets.append((act._post_activation_vars, inner.name, "out"))  # pylint: disable=protected-access
    return [t for t in targets if tuple(t[0]["min_var"].shape) == ()]


def init_ranges(qat_model, float_model, images, batch_size=32):
    """Starts every activation range at the float model's observed range.

    tfmot's moving-average quantizers start at [-6, 6] and move with decay
    0.999, so after a short fine-tune most ranges are still far too wide
    (coarse steps for small activations, e.g. the squeeze-excite path). We
    set each range to the mean over batches of the batch min/max (what the
    EMA converges to) of the same tensor in the float model, measured on
    `images`; fine-tuning then tracks it as usual.

    Args:
      qat_model: From `quantize`.
      float_model: The flat tf_keras float model it was made from.
      images: float32 (N, H, W, 3) 0..255 training images.
      batch_size: Batch size of the statistics (use the fine-tuning one).

    Returns:
      The number of ranges set.
    """
    import tf_keras  # Optional (the 'qat' extra); Keras 2, for tfmot only.

    targets = _range_targets(qat_model)
    outputs = []
    for _, name, kind in targets:
        layer = float_model.get_layer(name)
        if kind == "out":
            outputs.append(layer.output)
            continue
        config = dict(layer.get_config(), activation="linear", name=f"{name}_preactivation")
        linear = type(layer).from_config(config)
        outputs.append(linear(layer.input))
        linear.set_weights(layer.get_weights())
    probe = tf_keras.Model(float_model.inputs, outputs)
    sums = np.zeros((len(targets), 2))
    batches = 0
    for start in range(0, len(images), batch_size):
        values = probe(np.asarray(images[start : start + batch_size], np.float32), training=False)
        for i, value in enumerate(values):
            value = np.asarray(value)
            sums[i] += (min(value.min(), 0.0), max(value.max(), 0.0))
        batches += 1
    for (variables, _, _), (low, high) in zip(targets, sums / batches):
        variables["min_var"].assign(low)
        variables["max_var"].assign(high)
    return len(targets)


def convert_qat(qat_model, io_type="uint8", *, dynamic_batch=False):
    """Converts a QAT tf_keras model to int8 .tflite bytes.

    No representative dataset: every range comes from the fake-quant nodes.
    `supported_ops` is left at the default on purpose (TFLITE_BUILTINS_INT8
    would demand calibration data); `census.check_integer_only` enforces the
    result. (`converter.convert` is the post-training conversion of a Keras 3
    model; this one converts the fake-quant graph.)

    Args:
      qat_model: From `quantize` (after fine-tuning).
      io_type: "uint8" (raw pixels in, default), "int8" or "float32".
      dynamic_batch: Keep the batch dimension open (default batch 1).
    """
    if io_type not in IO_TYPES:
        raise ValueError(f"io_type: expected one of {list(IO_TYPES)}, got {io_type!r}")
    sync_weight_ranges(qat_model)
    shape = tuple(qat_model.inputs[0].shape[1:])
    spec = tf.TensorSpec(((None if dynamic_batch else 1),) + shape, tf.float32, name="image")
    serve = tf.function(lambda image: qat_model(image, training=False), input_signature=[spec])
    # Save a plain tf.Module holding only the serving function and the
    # variables: saving the tf_keras model itself also traces every layer
    # for Keras' SavedModel format (3x slower, unused by the converter).
    module = tf.Module()
    module.serve = serve
    module.variables_ = qat_model.variables
    with tempfile.TemporaryDirectory(prefix="effnet-qat-") as tmp:
        tf.saved_model.save(module, tmp, signatures=serve.get_concrete_function())
        converter = tf.lite.TFLiteConverter.from_saved_model(tmp)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if io_type != "float32":
            converter.inference_input_type = tf.as_dtype(io_type)
            converter.inference_output_type = tf.as_dtype(io_type)
        return converter.convert()
