"""Analytic parameter and FLOP counts (multiply-adds) for Keras models.

MACs count the multiply-accumulates of convolutions and dense layers;
FLOPs = 2 * MACs plus one operation per element for the element-wise work
that a TensorFlow graph executes (bias add, batch norm scale and shift,
activations' multiplies, residual adds, SE gating, pooling, preprocessing),
which is what TensorFlow's profiler counts.
"""

import math

import keras

from keras_effnet.core.graph import trace_layers


def _elements(shape):
    return math.prod(d for d in shape[1:] if d is not None)


def _layer_costs(layer, input_shapes, output_shape):
    """Returns (macs, elementwise_flops) of one standard layer."""
    out = _elements(output_shape)
    inp = _elements(input_shapes[0])
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        kh, kw = layer.kernel_size
        macs = out * kh * kw
        return macs, out if layer.use_bias else 0
    if isinstance(layer, keras.layers.Conv2D):
        kh, kw = layer.kernel_size
        cin = input_shapes[0][-1] // layer.groups
        macs = out * kh * kw * cin
        extra = (out if layer.use_bias else 0) + (
            out if layer.activation.__name__ in ("sigmoid", "silu", "swish") else 0
        )
        return macs, extra
    if isinstance(layer, keras.layers.Dense):
        macs = input_shapes[0][-1] * layer.units
        return macs, out if layer.use_bias else 0
    if isinstance(layer, keras.layers.BatchNormalization):
        return 0, 2 * out  # folded scale and shift
    if isinstance(layer, keras.layers.Activation):
        name = getattr(layer.activation, "__name__", "")
        return 0, out if name in ("silu", "swish", "hard_swish", "gelu") else 0
    if isinstance(layer, (keras.layers.Add, keras.layers.Multiply)):
        return 0, out * (len(input_shapes) - 1)
    if isinstance(layer, (keras.layers.GlobalAveragePooling2D, keras.layers.GlobalMaxPooling2D)):
        return 0, inp
    if isinstance(layer, keras.layers.Rescaling):
        return 0, 2 * out
    if isinstance(layer, keras.layers.Normalization):
        return 0, 2 * out
    if not isinstance(layer, keras.layers.Layer):  # A raw element-wise op (`trace_layers`).
        return 0, out
    return 0, 0


def model_profile(model, per_layer=False) -> dict:
    """Counts parameters and multiply-adds of `model` at its input shape.

    Args:
        model: a Keras model with a static input shape (H and W known).
        per_layer: also return a list of per-layer rows.

    Returns:
        dict with "params", "trainable_params", "macs", "flops" (and "layers").
    """
    shape = tuple(model.inputs[0].shape)
    if any(d is None for d in shape[1:]):
        raise ValueError(
            "FLOPs need a static input size; build the model with input_shape=(H, W, 3). "
            f"Received: input shape {shape}"
        )
    macs = elementwise = 0
    rows = []
    for layer, input_shapes, output_shape in trace_layers(model):
        layer_macs, layer_flops = _layer_costs(layer, input_shapes, output_shape)
        macs += layer_macs
        elementwise += layer_flops
        if per_layer:
            rows.append(
                {
                    "layer": layer.name,
                    "type": type(layer).__name__,
                    "output_shape": output_shape,
                    "macs": layer_macs,
                }
            )
    result = {
        "params": int(model.count_params()),
        "trainable_params": int(sum(math.prod(w.shape) for w in model.trainable_weights)),
        "macs": int(macs),
        "flops": int(2 * macs + elementwise),
        "input_shape": shape[1:],
    }
    if per_layer:
        result["layers"] = rows
    return result


def activation_bytes(model, bytes_per_element=4) -> int:
    """Bytes of every layer's output for one image: what a training step keeps for backprop.

    A lower bound of a training step's memory per image (the gradients of
    those outputs and the framework's workspaces come on top); used to refuse
    an input size that cannot fit before TensorFlow aborts with
    `std::bad_alloc` (see `keras_effnet.training.modeling.check_memory`).
    """
    return bytes_per_element * sum(_elements(out) for _, _, out in trace_layers(model))
