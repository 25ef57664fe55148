"""Which quantizer goes where in QAT: our tfmot QuantizeConfigs and scheme.

`qat_graph.annotate` and `qat_graph.quantize` apply them to the flat tf_keras
model from `translate.translate_model(..., split_sigmoid=True)`. Quantizers
(the default 8-bit scheme of tfmot, plus ours; table in docs/qat.md "How it works"):
  * Conv2D / Dense: 8-bit symmetric per-channel weights, 8-bit output.
    DepthwiseConv2D: the same, per channel (`DepthwiseQuantizeConfig`:
    tfmot's default is per tensor, while the converter stores per-channel
    weights, so QAT would train against the wrong grid). A following
    BatchNormalization (and ReLU/ReLU6) is not folded during QAT: the conv
    gets a no-op activation, the BN or ReLU carries the output quantizer,
    and the converter folds them into the conv.
  * ReLU (relu6 is rebuilt as a ReLU layer, see `translate._relu_layer`),
    Add, GlobalAveragePooling2D: moving-average
    8-bit per-tensor asymmetric output quantizer.
  * Multiply (squeeze-excite gate, and swish = x * sigmoid(x)), Rescaling,
    Normalization: rejected by the default registry; `OutputQuantizeConfig`
    (no weight/activation quantizers, one moving-average 8-bit per-tensor
    asymmetric output quantizer).
  * Activation("sigmoid") (split out of swish and of the SE expand conv):
    `SigmoidQuantizeConfig`, the fixed range TFLite's LOGISTIC uses.
  * Input: all-values quantizer pinned to exactly 0..255 (scale 1, so a
    uint8 input is the raw pixel).
  * Dropout (incl. stochastic depth), ZeroPadding2D, Reshape: none.

tfmot is imported inside functions only: importing it sets
TF_USE_LEGACY_KERAS=1 for the whole process.
"""

import functools

import tensorflow as tf

# Layers the default 8-bit registry rejects and that get OutputQuantizeConfig.
OUTPUT_ONLY_LAYERS = ("Multiply", "Rescaling", "Normalization")


def load_tfmot():
    """The tfmot module, imported on first use (see the module docstring)."""
    import tensorflow_model_optimization as tfmot  # Optional; sets legacy Keras on import.

    return tfmot


@functools.lru_cache(maxsize=None)
def output_quantize_config_class():
    """The `OutputQuantizeConfig` class (built on first use: lazy tfmot)."""
    quant = load_tfmot().quantization.keras

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
            return [
                quant.quantizers.MovingAverageQuantizer(
                    num_bits=8, per_axis=False, symmetric=False, narrow_range=False
                )
            ]

        def get_config(self):
            return {}

    return OutputQuantizeConfig


@functools.lru_cache(maxsize=None)
def sigmoid_quantize_config_class():
    """The `SigmoidQuantizeConfig` class (built on first use: lazy tfmot)."""
    quant = load_tfmot().quantization.keras
    base = output_quantize_config_class()

    class SigmoidQuantizeConfig(base):
        """Quantizes a sigmoid's output exactly as TFLite's int8 LOGISTIC.

        TFLite fixes that output to scale 1/256, zero point -128: the range
        [0, 255/256] in 8 bits.
        """

        def get_output_quantizers(self, layer):
            return [
                quant.quantizers.FixedQuantizer(
                    num_bits=8, init_min=0.0, init_max=255.0 / 256.0, narrow_range=False
                )
            ]

    return SigmoidQuantizeConfig


@functools.lru_cache(maxsize=None)
def depthwise_quantize_config_class():
    """`DepthwiseQuantizeConfig`: per-channel depthwise weights in QAT.

    tfmot 0.8 fake-quantizes a depthwise kernel (kh, kw, C, M) along its last
    axis, i.e. per tensor for M = 1, while the converter stores it per
    output channel (C * M scales). Channels with small weights then train on
    a much coarser grid than the one they ship on, and the .tflite differs
    from the QAT model. This quantizer views the kernel as (kh, kw, 1, C*M)
    so each output channel gets its own symmetric range, like TFLite (the
    same reshape trick tfmot uses for Conv2DTranspose).
    """
    quant = load_tfmot().quantization.keras
    from tensorflow_model_optimization.python.core.quantization.keras.default_8bit import (
        default_8bit_quantize_registry as registry,
    )  # Optional tfmot, imported lazily (see the module docstring).

    class DepthwisePerChannelQuantizer(quant.quantizers.LastValueQuantizer):
        """8-bit symmetric narrow-range quantizer per depthwise channel."""

        def __init__(self):
            super().__init__(num_bits=8, per_axis=True, symmetric=True, narrow_range=True)

        def build(self, tensor_shape, name, layer):
            channels = int(tensor_shape[-2]) * int(tensor_shape[-1])
            return {
                "min_var": layer.add_weight(
                    name + "_min", shape=(channels,), trainable=False, initializer="zeros"
                ),
                "max_var": layer.add_weight(
                    name + "_max", shape=(channels,), trainable=False, initializer="zeros"
                ),
            }

        def __call__(self, inputs, training, weights, **kwargs):
            shape = tf.shape(inputs)
            flat = tf.reshape(inputs, tf.concat([shape[:2], [1], [shape[2] * shape[3]]], 0))
            flat = super().__call__(flat, training, weights, **kwargs)
            return tf.reshape(flat, shape)

        def get_config(self):
            return {}

    class DepthwiseQuantizeConfig(registry.Default8BitConvQuantizeConfig):
        """Default depthwise config with per-channel weights."""

        def __init__(self):
            super().__init__(["depthwise_kernel"], ["activation"], False)
            self.weight_quantizer = DepthwisePerChannelQuantizer()

        def get_config(self):
            return {}

        @classmethod
        def from_config(cls, config):
            return cls()

    return DepthwiseQuantizeConfig


def scheme(prune_preserve):
    """tfmot's 8-bit scheme (or its pruning-preserving variant) whose
    registry hands DepthwiseConv2D our per-channel config. Going through
    the registry (not an annotation) keeps tfmot's conv + BN transforms."""
    from tensorflow_model_optimization.python.core.quantization.keras.collab_opts.prune_preserve import (
        default_8bit_prune_preserve_quantize_scheme as pps,
    )  # Optional tfmot, imported lazily (see the module docstring).
    from tensorflow_model_optimization.python.core.quantization.keras.default_8bit import (
        default_8bit_quantize_scheme as default,
    )  # Optional tfmot, imported lazily (see the module docstring).

    base = (
        pps.Default8BitPrunePreserveQuantizeScheme
        if prune_preserve
        else default.Default8BitQuantizeScheme
    )
    depthwise = depthwise_quantize_config_class()

    class _Registry:
        def __init__(self, inner):
            self._inner = inner

        def supports(self, layer):
            return self._inner.supports(layer)

        def get_quantize_config(self, layer):
            if type(layer).__name__ == "DepthwiseConv2D":
                return depthwise()
            return self._inner.get_quantize_config(layer)

    class Scheme(base):
        def get_quantize_registry(self):
            return _Registry(super().get_quantize_registry())

    return Scheme()


def qat_scope():
    """`quantize_scope` with our custom objects (to load a saved QAT model)."""
    return load_tfmot().quantization.keras.quantize_scope(
        {
            "OutputQuantizeConfig": output_quantize_config_class(),
            "SigmoidQuantizeConfig": sigmoid_quantize_config_class(),
            "DepthwiseQuantizeConfig": depthwise_quantize_config_class(),
        }
    )
