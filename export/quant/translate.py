"""Keras 3 -> tf_keras translation for tensorflow-model-optimization.

tfmot (QAT, pruning) only understands Keras 2 functional graphs built from
standard layers (`tf_keras`). Our public models are Keras 3 graphs whose nodes
are composite layers (`MBConv`, ...). This module gets from one to the other
in three steps, each usable on its own (docs/qat.md
"How it works"):

1. `flatten.flatten_model`: re-trace the Keras 3 model into a graph of
   built-in layers (sharing the original's layers and variables).
2. `to_tf_keras`: rebuild the flat graph layer by layer in `tf_keras` from each
   layer's `get_config()`, keeping the layer names, and copy the weights by
   layer name with a shape check.
3. `check_equivalence`: run both on the same input and fail if they disagree.

`translate_model` chains the three. Nothing here imports tfmot, so importing
this module does not switch the process to legacy Keras.
"""

import inspect

import keras
import numpy as np

from keras_effnet import keras_internals
from keras_effnet.core.graph import flatten_model

# Config keys of Keras 3 layers that tf_keras either names differently or
# does not know. Initializers/regularizers/constraints are translated below.
_DROP_KEYS = frozenset(
    {"quantization_config", "lora_rank", "lora_alpha", "optional", "synchronized"}
)
# Keras 3 activation names that tf_keras spells differently.
_ACTIVATION_ALIASES = {"silu": "swish"}
# Keras 3 variable name -> tf_keras variable name, per layer class.
_WEIGHT_ALIASES = {"DepthwiseConv2D": {"kernel": "depthwise_kernel"}}
# Standard keras layers whose Keras 3 config needs more than the generic
# mapping; filled by the functions decorated with _special below.
_SPECIAL = {}


def _special(class_name):
    def register(fn):
        _SPECIAL[class_name] = fn
        return fn

    return register


def _translate_object(value, deserialize, what, layer_name):
    """Keras 3 serialized initializer/regularizer/constraint -> tf_keras."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, dict) and "class_name" in value:
        config = dict(value.get("config") or {})
        try:
            return deserialize({"class_name": value["class_name"], "config": config})
        except (ValueError, TypeError):
            # Keras 3 added keys tf_keras does not know (e.g. input_axes).
            known = {
                k: v
                for k, v in config.items()
                if k
                in (
                    "seed",
                    "scale",
                    "mode",
                    "distribution",
                    "l1",
                    "l2",
                    "value",
                    "mean",
                    "stddev",
                    "minval",
                    "maxval",
                    "gain",
                    "max_value",
                    "min_value",
                    "rate",
                    "axis",
                )
            }
            return deserialize({"class_name": value["class_name"], "config": known})
    raise ValueError(f"to_tf_keras: layer {layer_name!r} has an untranslatable {what} {value!r}")


def _generic_config(layer, tfk_cls, tf_keras):
    config = dict(layer.get_config())
    config["dtype"] = "float32"
    for key in list(config):
        value = config[key]
        if key in _DROP_KEYS:
            del config[key]
        elif key.endswith("_initializer"):
            config[key] = _translate_object(value, tf_keras.initializers.get, key, layer.name)
        elif key.endswith("_regularizer"):
            config[key] = _translate_object(value, tf_keras.regularizers.get, key, layer.name)
        elif key.endswith("_constraint"):
            config[key] = _translate_object(value, tf_keras.constraints.get, key, layer.name)
        elif key == "activation":
            if not isinstance(value, str):
                raise ValueError(
                    f"to_tf_keras: layer {layer.name!r} has a non-builtin activation {value!r}"
                )
            config[key] = _ACTIVATION_ALIASES.get(value, value)
    params = inspect.signature(tfk_cls.__init__).parameters
    if not any(p.kind == p.VAR_KEYWORD for p in params.values()):
        config = {k: v for k, v in config.items() if k in params}
    return config


@_special("InputLayer")
def _input_layer(layer, tf_keras):
    del tf_keras
    return {"batch_input_shape": tuple(layer.batch_shape), "dtype": "float32", "name": layer.name}


@_special("Normalization")
def _normalization(layer, tf_keras):
    config = _generic_config(layer, tf_keras.layers.Normalization, tf_keras)
    # Adapted statistics live in variables, copied with the other weights.
    for key in ("mean", "variance"):
        if config.get(key) is not None:
            config[key] = np.asarray(config[key]).tolist()
    return config


def _make_tf_keras_layer(layer, tf_keras):
    class_name = type(layer).__name__
    tfk_cls = getattr(tf_keras.layers, class_name, None)
    if tfk_cls is None:
        raise ValueError(
            f"to_tf_keras: layer {layer.name!r} of class {class_name} has no tf_keras counterpart"
        )
    if class_name in _SPECIAL:
        config = _SPECIAL[class_name](layer, tf_keras)
    else:
        config = _generic_config(layer, tfk_cls, tf_keras)
    return tfk_cls.from_config(config)


def _short_name(variable):
    return variable.name.split("/")[-1].split(":")[0]


def _tf_keras_name(layer, variable):
    short = _short_name(variable)
    if isinstance(layer, keras.layers.Layer):  # Keras 3 -> tf_keras spelling
        return _WEIGHT_ALIASES.get(type(layer).__name__, {}).get(short, short)
    return short


def copy_weights(source, target):
    """Copies variables between a Keras 3 and a tf_keras model, by name.

    Works in both directions; `target` must be flat (e.g. from
    `flatten_model`), `source` may nest. Layers are matched by layer name, variables by
    their short name in tf_keras spelling (Keras 3 DepthwiseConv2D `kernel`
    is tf_keras `depthwise_kernel`) and checked for equal shapes. Every
    variable of every `target` layer must be found in `source` (weightless
    target layers missing from `source` are skipped).

    Raises:
      ValueError: On any missing layer, missing variable or shape mismatch.
    """
    # Leaf layers of any nesting depth, so `source` need not be flat.
    leaves = {
        l.name: l
        for l in keras_internals.flatten_layers(source)
        if not keras_internals.sublayers(l)
    }
    for t_layer in target.layers:
        s_layer = leaves.get(t_layer.name)
        if s_layer is None:
            if not t_layer.weights:  # e.g. a split-off sigmoid
                continue
            raise ValueError(f"copy_weights: target layer {t_layer.name!r} not in source")
        s_vars = {_tf_keras_name(s_layer, v): v for v in s_layer.weights}
        t_vars = t_layer.weights
        if len(s_vars) != len(t_vars):
            raise ValueError(
                f"copy_weights: layer {t_layer.name!r} has {len(s_vars)} "
                f"variables in the source and {len(t_vars)} in the target"
            )
        for t_var in t_vars:
            short = _tf_keras_name(t_layer, t_var)
            if short not in s_vars:
                raise ValueError(
                    f"copy_weights: variable {short!r} of layer "
                    f"{t_layer.name!r} not found in the source "
                    f"(has {sorted(s_vars)})"
                )
            value = np.asarray(keras.ops.convert_to_numpy(s_vars[short]))
            if tuple(value.shape) != tuple(t_var.shape):
                raise ValueError(
                    f"copy_weights: {t_layer.name}/{short} has shape "
                    f"{tuple(value.shape)} in the source and "
                    f"{tuple(t_var.shape)} in the target"
                )
            t_var.assign(value)
    refresh_normalization(target)


def refresh_normalization(model):
    """Re-derives Normalization's cached mean/variance from its variables.

    Both Keras flavours compute the tensors used in `call()` from the
    variables in `build`/`finalize_state` only, so after `set_weights` (or a
    `clone_model`, `quantize_apply`, ...) they are stale until refreshed.
    Wrapped layers (tfmot wrappers keep the original in `.layer`) count too.
    """
    for layer in model.layers:
        inner = getattr(layer, "layer", layer)
        if type(inner).__name__ == "Normalization" and inner.built:
            inner.finalize_state()


def _split_sigmoid(layer, tf_keras):
    """A callable computing `layer` with its sigmoid as its own layer.

    TFLite computes sigmoid (and swish = x * sigmoid(x), LOGISTIC + MUL)
    with an 8-bit sigmoid output of scale 1/256. tfmot leaves that tensor
    float during QAT, so every SE gate and swish in the QAT model differs
    from the .tflite by up to half a step, which compounds through the
    network. Splitting the sigmoid out lets QAT quantize it exactly like
    TFLite (see `qat.annotate`). Returns None when `layer` has neither.
    The weight-bearing layer keeps its name (weights still copy by name);
    an Activation("swish") becomes Multiply under its own name.
    """
    activation = getattr(layer, "activation", None)
    act = getattr(activation, "__name__", None)
    is_activation = type(layer).__name__ == "Activation"
    if act not in ("swish", "silu", "sigmoid") or (is_activation and act == "sigmoid"):
        return None
    name = layer.name
    base = None
    if not is_activation:
        base = type(layer).from_config(dict(layer.get_config(), activation="linear"))
    sigmoid = tf_keras.layers.Activation("sigmoid", name=f"{name}_sigmoid")
    multiply = None
    if act != "sigmoid":
        multiply = tf_keras.layers.Multiply(name=name if is_activation else f"{name}_swish")

    def call(x, **kwargs):
        del kwargs  # training: none of these layers uses it
        if base is not None:
            x = base(x)
        gate = sigmoid(x)
        return gate if multiply is None else multiply([x, gate])

    return call


def _relu_layer(layer, tf_keras):
    """Activation("relu"/"relu6") as a ReLU layer (same name, same output).

    tfmot folds Conv/DepthwiseConv + BatchNorm + ReLU into one quantized
    op only when the ReLU is a `ReLU` layer (its Activation pattern knows
    "relu" alone). Left as Activation("relu6"), QAT quantizes the
    BatchNorm output as well, a rounding step the fused TFLite op (conv,
    bias, relu6, one output scale) does not have; in Lite models that costs
    several points of top-1 agreement between the QAT model and its .tflite.
    Returns None for any other layer.
    """
    if type(layer).__name__ != "Activation":
        return None
    act = getattr(layer.activation, "__name__", None)
    if act not in ("relu", "relu6"):
        return None
    return tf_keras.layers.ReLU(max_value=6.0 if act == "relu6" else None, name=layer.name)


def to_tf_keras(flat_model, split_sigmoid=False):
    """Rebuilds a flat Keras 3 functional model in tf_keras, with weights.

    Args:
      flat_model: Output of `flatten_model` (standard layers only).
      split_sigmoid: Give every sigmoid (fused in a conv/dense, or inside
        swish) its own Activation layer, for QAT (see `_split_sigmoid`).

    Returns:
      A `tf_keras.Model` with the same layer names, wiring and weights.
    """
    import tf_keras  # Optional (the 'qat' extra); Keras 2, for tfmot only.

    built = {}

    def operation_fn(op):
        if op.name not in built:
            layer = _make_tf_keras_layer(op, tf_keras)
            split = _split_sigmoid(layer, tf_keras) if split_sigmoid else None
            built[op.name] = split or _relu_layer(layer, tf_keras) or layer
        return built[op.name]

    inputs = []
    for layer in flat_model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            tfk_input = _make_tf_keras_layer(layer, tf_keras)
            built[layer.name] = tfk_input
    for x in flat_model.inputs:
        inputs.append(built[x._keras_history.operation.name].output)  # pylint: disable=protected-access
    # The traversal below hands tf_keras tensors to tf_keras layers, so the
    # Keras 3 graph code is only used for its node order and arguments.
    outputs = keras_internals.run_through_graph(flat_model, inputs, operation_fn)
    model = tf_keras.Model(inputs if len(inputs) > 1 else inputs[0], outputs, name=flat_model.name)
    copy_weights(flat_model, model)
    return model


def check_equivalence(source, target, inputs=None, atol=1e-5, seed=0):
    """Asserts that `source` and `target` produce the same outputs.

    Args:
      source: Keras 3 model.
      target: tf_keras model.
      inputs: Optional numpy batch; default 4 random images in 0..255.
      atol: Largest allowed max |difference|.
      seed: Seed for the random default inputs.

    Returns:
      The max |difference| observed.

    Raises:
      ValueError: If the difference exceeds `atol`.
    """
    if inputs is None:
        shape = (4,) + tuple(source.inputs[0].shape[1:])
        inputs = np.random.default_rng(seed).uniform(0, 255, size=shape).astype("float32")
    expected = np.asarray(keras.ops.convert_to_numpy(source(inputs, training=False)))
    actual = np.asarray(target(inputs, training=False))
    diff = float(np.max(np.abs(expected - actual)))
    if not diff < atol:
        raise ValueError(
            f"check_equivalence: tf_keras rebuild of {source.name!r} differs "
            f"from the original by max|diff|={diff:.3g} (atol={atol})"
        )
    return diff


def translate_model(model, check_inputs=None, atol=1e-5, split_sigmoid=False):
    """Flattens a Keras 3 model, rebuilds it in tf_keras and checks outputs.

    Args:
      model: Keras 3 functional model (composite layers allowed).
      check_inputs: Batch for the equivalence check; pass real images when
        you have them (default random 0..255 noise, which for a trained
        model is far from its data and amplifies float rounding).
      atol: Largest allowed max |difference| between the two.
      split_sigmoid: See `to_tf_keras`.

    Returns:
      The tf_keras model.
    """
    flat = flatten_model(model)
    tfk_model = to_tf_keras(flat, split_sigmoid=split_sigmoid)
    check_equivalence(model, tfk_model, check_inputs, atol=atol)
    return tfk_model
