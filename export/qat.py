"""Quantization-aware training (tfmot) into an integer-only int8 .tflite.

Path (DESIGN.md §5): Keras 3 model -> `translate.translate_model` (flat
tf_keras graph, same layer names and weights, outputs checked) -> `annotate`
-> `quantize_apply` -> fine-tune on the training data -> `convert` (int8,
uint8/int8/float I/O) -> op census (fail on any float op) -> the export
pipeline's verification and metadata (`export_qat`).

Quantizers (what tfmot's default 8-bit scheme does, plus ours):
  * Conv2D / DepthwiseConv2D / Dense: 8-bit weights (per-channel symmetric
    for Conv2D, per-tensor for DepthwiseConv2D during QAT; the converter
    stores depthwise weights per channel), 8-bit outputs; a following
    BatchNormalization is not folded during QAT, it carries the output
    quantizer instead and the converter folds it.
  * Activation (swish, relu6, ...), Add, GlobalAveragePooling2D: 8-bit
    per-tensor asymmetric output quantizer. Sigmoid/softmax fused into a conv
    or dense are quantized by the converter's fixed ranges.
  * Multiply (the squeeze-excite gate), Rescaling, Normalization: not in the
    default registry; `OutputQuantizeConfig` (no weight/activation
    quantizers, one moving-average 8-bit per-tensor asymmetric output
    quantizer). The input pixels get an all-values quantizer pinned to
    exactly 0..255 (scale 1, so a uint8 input is the raw pixel).
  * Dropout, ZeroPadding2D, Reshape: no quantizer (pass-through).

tfmot is imported inside functions only: importing it sets
TF_USE_LEGACY_KERAS=1 for the whole process.
"""

import dataclasses
import functools
import os
import tempfile

import numpy as np
import tensorflow as tf

from keras_effnet.export import finetune
from keras_effnet.export import translate

IO_TYPES = {"uint8": tf.uint8, "int8": tf.int8, "float32": tf.float32}
# Layers the default 8-bit registry rejects and that get OutputQuantizeConfig.
OUTPUT_ONLY_LAYERS = ("Multiply", "Rescaling", "Normalization")
PIXEL_RANGE = (0.0, 255.0)


def _tfmot():
    import tensorflow_model_optimization as tfmot  # pylint: disable=import-outside-toplevel
    return tfmot


@functools.lru_cache(maxsize=None)
def output_quantize_config_class():
    """The `OutputQuantizeConfig` class (built on first use: lazy tfmot)."""
    quant = _tfmot().quantization.keras

    class OutputQuantizeConfig(quant.QuantizeConfig):
        """Quantizes only a layer's output: 8 bits, per-tensor, asymmetric."""

        def get_weights_and_quantizers(self, layer):
            return []

        def get_activations_and_quantizers(self, layer):
            return []

        def set_quantize_weights(self, layer, quantize_weights):
            pass

        def set_quantize_activations(self, layer, quantize_activations):
            pass

        def get_output_quantizers(self, layer):
            return [quant.quantizers.MovingAverageQuantizer(
                num_bits=8, per_axis=False, symmetric=False,
                narrow_range=False)]

        def get_config(self):
            return {}

    return OutputQuantizeConfig


@functools.lru_cache(maxsize=None)
def sigmoid_quantize_config_class():
    """The `SigmoidQuantizeConfig` class (built on first use: lazy tfmot)."""
    quant = _tfmot().quantization.keras
    base = output_quantize_config_class()

    class SigmoidQuantizeConfig(base):
        """Quantizes a sigmoid's output exactly as TFLite's int8 LOGISTIC.

        TFLite fixes that output to scale 1/256, zero point -128: the range
        [0, 255/256] in 8 bits.
        """

        def get_output_quantizers(self, layer):
            return [quant.quantizers.FixedQuantizer(
                num_bits=8, init_min=0.0, init_max=255.0 / 256.0,
                narrow_range=False)]

    return SigmoidQuantizeConfig


def qat_scope():
    """`quantize_scope` with our custom objects (to load a saved QAT model)."""
    return _tfmot().quantization.keras.quantize_scope(
        {"OutputQuantizeConfig": output_quantize_config_class(),
         "SigmoidQuantizeConfig": sigmoid_quantize_config_class()})


def annotate(tfk_model):
    """Annotates every layer of a flat tf_keras model for quantization.

    Layers in `OUTPUT_ONLY_LAYERS` get `OutputQuantizeConfig`, sigmoid
    Activation layers `SigmoidQuantizeConfig`, the rest the default 8-bit
    scheme's config (which rejects unknown layers by name).
    """
    quant = _tfmot().quantization.keras
    import tf_keras  # pylint: disable=import-outside-toplevel
    output_only = output_quantize_config_class()
    sigmoid = sigmoid_quantize_config_class()

    def clone_fn(layer):
        if isinstance(layer, tf_keras.layers.InputLayer):
            return layer.__class__.from_config(layer.get_config())
        config = None
        if type(layer).__name__ in OUTPUT_ONLY_LAYERS:
            config = output_only()
        elif (type(layer).__name__ == "Activation" and
              layer.get_config()["activation"] == "sigmoid"):
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
    quant = _tfmot().quantization.keras
    scheme = None
    if prune_preserve:
        from tensorflow_model_optimization.python.core.quantization.keras.collab_opts.prune_preserve import default_8bit_prune_preserve_quantize_scheme as pps  # pylint: disable=import-outside-toplevel,line-too-long
        scheme = pps.Default8BitPrunePreserveQuantizeScheme()
    annotated = annotate(tfk_model)
    with qat_scope():
        kwargs = {"scheme": scheme} if scheme is not None else {}
        qat_model = quant.quantize_apply(annotated, **kwargs)
    translate.refresh_normalization(qat_model)
    if input_range is not None:
        pin_input_range(qat_model, input_range)
    return qat_model


def pin_input_range(qat_model, input_range=PIXEL_RANGE):
    """Sets the input quantizer's range (tracked ranges only widen from it)."""
    low, high = (float(v) for v in input_range)
    if not low <= 0.0 < high:
        raise ValueError(
            f"input_range: expected (min <= 0 < max), got {input_range!r}")
    found = 0
    for layer in qat_model.layers:
        if type(layer).__name__ == "QuantizeLayer":
            layer.quantizer_vars["min_var"].assign(low)
            layer.quantizer_vars["max_var"].assign(high)
            found += 1
    if not found:
        raise ValueError("qat_model: no input QuantizeLayer to pin")


def _range_targets(qat_model):
    """[(min/max variable dict, float layer name, "out" | "pre")].

    Reads tfmot 0.8 wrapper internals (`_output_quantizer_vars`,
    `_quantize_activations[i]._pre/_post_activation_vars`); pinned by
    tests/test_qat.py.
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
    import tf_keras  # pylint: disable=import-outside-toplevel
    targets = _range_targets(qat_model)
    outputs = []
    for _, name, kind in targets:
        layer = float_model.get_layer(name)
        if kind == "out":
            outputs.append(layer.output)
            continue
        config = dict(layer.get_config(), activation="linear",
                      name=f"{name}_preactivation")
        linear = type(layer).from_config(config)
        outputs.append(linear(layer.input))
        linear.set_weights(layer.get_weights())
    probe = tf_keras.Model(float_model.inputs, outputs)
    sums = np.zeros((len(targets), 2))
    batches = 0
    for start in range(0, len(images), batch_size):
        values = probe(np.asarray(images[start:start + batch_size],
                                  np.float32), training=False)
        for i, value in enumerate(values):
            value = np.asarray(value)
            sums[i] += (min(value.min(), 0.0), max(value.max(), 0.0))
        batches += 1
    for (variables, _, _), (low, high) in zip(targets, sums / batches):
        variables["min_var"].assign(low)
        variables["max_var"].assign(high)
    return len(targets)


def convert(qat_model, io_type="uint8", *, dynamic_batch=False):
    """Converts a QAT tf_keras model to int8 .tflite bytes.

    No representative dataset: every range comes from the fake-quant nodes.
    `supported_ops` is left at the default on purpose (TFLITE_BUILTINS_INT8
    would demand calibration data); `check_integer_only` enforces the result.

    Args:
      qat_model: From `quantize` (after fine-tuning).
      io_type: "uint8" (raw pixels in, default), "int8" or "float32".
      dynamic_batch: Keep the batch dimension open (default batch 1).
    """
    if io_type not in IO_TYPES:
        raise ValueError(
            f"io_type: expected one of {list(IO_TYPES)}, got {io_type!r}")
    shape = tuple(qat_model.inputs[0].shape[1:])
    spec = tf.TensorSpec(((None if dynamic_batch else 1),) + shape,
                         tf.float32, name="image")
    serve = tf.function(lambda image: qat_model(image, training=False),
                        input_signature=[spec])
    with tempfile.TemporaryDirectory(prefix="effnet-qat-") as tmp:
        tf.saved_model.save(qat_model, tmp,
                            signatures=serve.get_concrete_function())
        converter = tf.lite.TFLiteConverter.from_saved_model(tmp)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if io_type != "float32":
            converter.inference_input_type = IO_TYPES[io_type]
            converter.inference_output_type = IO_TYPES[io_type]
        return converter.convert()


def check_integer_only(tflite_bytes):
    """Op census; raises ValueError naming every op that computes in float."""
    from keras_effnet.export import census as census_lib  # pylint: disable=import-outside-toplevel
    census = census_lib.op_census(tflite_bytes)
    census_lib.check_integer_only(census)
    return census


@dataclasses.dataclass
class QATResult:
    """What `quantization_aware_training` produced.

    Attributes:
      tflite: Integer-only .tflite bytes (no metadata).
      qat_model: The fine-tuned tf_keras QAT model (the TFLite reference).
      census: Op census of `tflite`.
      history: Fine-tuning history (QAT; and pruning under "prune").
      pruning: Pruning summary (see `prune.sparsity_report`) or None.
    """

    tflite: bytes
    qat_model: object
    census: dict
    history: dict
    pruning: dict = None


def quantization_aware_training(
        model, dataset, *, epochs=1, batch_size=32, learning_rate=1e-4,
        steps_per_epoch=None, io_type="uint8", strategy=None, data_dir=None,
        augment=None, freeze_bn=True, num_calibration=256, prune=None,
        prune_epochs=None, seed=0, verbose=0):
    """Keras 3 model -> QAT fine-tuning -> integer-only int8 TFLite bytes.

    Args:
      model: Trained Keras 3 classifier (composite layers are fine).
      dataset: Training data: a `keras_effnet.data` name or an (images,
        labels) tuple.
      epochs: QAT fine-tuning epochs.
      batch_size, learning_rate, steps_per_epoch, augment, seed, verbose:
        Fine-tuning settings (see `finetune.fine_tune`).
      io_type: "uint8", "int8" or "float32" input/output.
      strategy: None, a strategy name or a `tf.distribute.Strategy`; the
        rebuilt model is created in its scope.
      data_dir: For named datasets.
      freeze_bn: Keep BatchNormalization statistics fixed while fine-tuning
        (small QAT batches would otherwise drift them).
      num_calibration: Training images whose float activation ranges start
        the quantizer ranges (`init_ranges`); 0 keeps tfmot's [-6, 6].
      prune: Target sparsity in (0, 1) of Conv2D/Dense kernels: prune first
        (`prune.prune_tf_keras`), strip, then pruning-preserving QAT.
      prune_epochs: Pruning epochs (default: `epochs`).

    Returns:
      A `QATResult`.

    Raises:
      ValueError: Bad arguments, a rebuild that does not match the model, or
        a converted model with float ops.
    """
    from keras_effnet.export import prune as prune_lib  # pylint: disable=import-outside-toplevel
    if io_type not in IO_TYPES:
        raise ValueError(
            f"io_type: expected one of {list(IO_TYPES)}, got {io_type!r}")
    strategy = finetune.resolve_strategy(strategy)
    settings = dict(batch_size=batch_size, learning_rate=learning_rate,
                    steps_per_epoch=steps_per_epoch, strategy=strategy,
                    data_dir=data_dir, augment=augment, seed=seed,
                    verbose=verbose)
    history, pruning = {}, None
    with strategy.scope():
        tfk_model = translate.translate_model(model, split_sigmoid=True)
    from_logits = not finetune.output_is_probability(tfk_model)
    if prune is not None:
        tfk_model, pruning, history["prune"] = prune_lib.prune_tf_keras(
            tfk_model, dataset, sparsity=prune,
            epochs=prune_epochs or epochs, **settings)
    if freeze_bn:
        set_batchnorm_trainable(tfk_model, False)
    with strategy.scope():
        qat_model = quantize(tfk_model, prune_preserve=prune is not None)
    if num_calibration:
        from keras_effnet.export import datasets  # pylint: disable=import-outside-toplevel
        size = finetune.image_size(tfk_model)
        images, _ = datasets.load_arrays(
            dataset, "train", (size, size), limit=num_calibration,
            data_dir=data_dir, shuffle=True, seed=seed)
        init_ranges(qat_model, tfk_model, images, batch_size)
    history["qat"] = finetune.fine_tune(qat_model, dataset, epochs=epochs,
                                        from_logits=from_logits, **settings)
    tflite = convert(qat_model, io_type)
    census = check_integer_only(tflite)
    return QATResult(tflite, qat_model, census, history, pruning)


def set_batchnorm_trainable(tfk_model, trainable):
    """Freezes/unfreezes BatchNormalization (frozen BN runs in inference)."""
    for layer in tfk_model.layers:
        if type(layer).__name__ == "BatchNormalization":
            layer.trainable = trainable


def predict_fn(qat_model, batch_size=64):
    """images (N, H, W, 3) float 0..255 -> float32 outputs of a QAT model."""
    def predict(images):
        return np.asarray(qat_model.predict(
            np.asarray(images, np.float32), batch_size=batch_size,
            verbose=0), np.float32)
    return predict


def export_qat(model, output, *, dataset="digits", epochs=1, prune=None,
               prune_epochs=None, io_type="uint8", labels=None, data_dir=None,
               batch_size=32, learning_rate=1e-4, steps_per_epoch=None,
               strategy=None, test_split="test", test_limit=None, threads=2,
               latency_runs=50, add_metadata=True, seed=0):
    """QAT export: fine-tune, convert, census, metadata, verify, write.

    The verification reference is the fine-tuned QAT model; the float
    model's top-1 on the same test images goes in the report as
    "float_top1" (with "qat" settings and, when pruning, "pruning").

    Args:
      model: Trained Keras 3 model or `.keras` path.
      output: Destination .tflite path (report: `<output>.verify.json`).
      dataset: Training and test data name (or a {split: (images, labels)}
        dict).
      epochs, prune, prune_epochs, io_type, batch_size, learning_rate,
        steps_per_epoch, strategy, data_dir, seed: See
        `quantization_aware_training`.
      labels, test_split, test_limit, threads, latency_runs, add_metadata:
        See `keras_effnet.export.export_tflite`.

    Returns:
      The verification report dict.
    """
    # Imported here: the export engineer's pipeline imports this module for
    # mode "qat", so keep the import graph one-way at load time.
    from keras_effnet.export import converter as convert_lib  # pylint: disable=import-outside-toplevel
    from keras_effnet.export import datasets  # pylint: disable=import-outside-toplevel
    from keras_effnet.export import pipeline  # pylint: disable=import-outside-toplevel
    from keras_effnet.export import verification as verify_lib  # pylint: disable=import-outside-toplevel
    if os.path.isdir(output):
        raise ValueError(f"output: {output!r} is a directory, expected a file")
    keras_model = converter.load_model(model)
    size = converter.input_size(keras_model)
    classes = int(keras_model.outputs[0].shape[-1])
    labels = pipeline._labels_for(labels, dataset, data_dir, classes)  # pylint: disable=protected-access
    test = datasets.load_arrays(dataset, test_split, size, limit=test_limit,
                                data_dir=data_dir)
    train = dataset
    if isinstance(dataset, dict):
        train = datasets.load_arrays(dataset, "train", size)
    result = quantization_aware_training(
        keras_model, train, epochs=epochs, batch_size=batch_size,
        learning_rate=learning_rate, steps_per_epoch=steps_per_epoch,
        io_type=io_type, strategy=strategy, data_dir=data_dir, prune=prune,
        prune_epochs=prune_epochs, seed=seed)
    float_out = verification.reference_fn(keras_model)(test[0])
    extra = {"io_type": io_type, "input_size": list(size), "denylist": [],
             "float_top1": float(np.mean(float_out.argmax(-1) == test[1])),
             "qat": {"epochs": epochs, "learning_rate": learning_rate,
                     "batch_size": batch_size, "history": result.history}}
    if result.pruning is not None:
        extra["pruning"] = result.pruning
    return pipeline.finish_tflite(
        result.tflite, predict_fn(result.qat_model), output,
        mode="qat" if prune is None else "qat+prune", test_data=test,
        labels=labels, integer_only=True, threads=threads,
        latency_runs=latency_runs, extra=extra, add_metadata=add_metadata)
