"""Flattening a model of composite layers into a graph of standard layers.

Quantization tooling (tfmot, our tf_keras translator) and per-layer profiling
need a functional graph of built-in layers. Our blocks (`MBConv`,
`SqueezeExcite`) are Keras 3 layer subclasses whose `call()` only composes
sublayers, so calling `block.call(x)` on symbolic inputs creates one node per
sublayer, sharing the sublayers (and their variables) with the original model
(docs/qat.md "How it works"). `flatten_model` does that generically, for any non-built-in
layer and nested models, level by level until only built-in layers remain.
Custom leaf layers that compute with ops (no sublayers) need a registered
stand-in (`register_replacement`); `StochasticDepth` has one.
"""

import inspect

import keras

from keras_effnet import keras_internals


def _is_standard(layer):
    """True for built-in keras layers (not models, not user subclasses).

    Built-in means the class itself is exported as `keras.layers.<name>`:
    a subclass (ours or a user's) is not, and neither is `keras.Model`.
    """
    cls = type(layer)
    return (
        cls is not keras.layers.Layer
        and getattr(keras.layers, cls.__name__, None) is cls
        and not isinstance(layer, keras.Model)
    )


def _replace_stochastic_depth(layer):
    # keras_effnet.core.layers.StochasticDepth is documented as exactly a
    # per-sample Dropout; tfmot accepts Dropout(noise_shape) as is.
    return keras.layers.Dropout(
        layer.rate, noise_shape=(None, 1, 1, 1), seed=layer.seed, name=layer.name
    )


# Leaf custom layers (arbitrary ops, no sublayers) -> an equivalent standard
# keras layer, keyed by class name. Extend with `register_replacement`.
_REPLACEMENTS = {"StochasticDepth": _replace_stochastic_depth}


def register_replacement(class_name, fn) -> None:
    """Registers `fn(layer) -> standard keras layer` for a leaf custom layer.

    `flatten_model` expands composite layers by tracing their `call()`; a
    custom layer that computes with ops instead of sublayers needs an
    equivalent standard layer (same name, same weights) to stand in for it.
    """
    _REPLACEMENTS[class_name] = fn


def _traced_call(layer):
    """`layer.call`, dropping call kwargs it does not accept (as __call__)."""
    params = inspect.signature(layer.call).parameters
    if any(p.kind == p.VAR_KEYWORD for p in params.values()):
        return layer.call

    def call(*args, **kwargs):
        return layer.call(*args, **{k: v for k, v in kwargs.items() if k in params})

    return call


def _flatten_once(model, replaced, allow_ops=False):
    """One re-trace; returns (new_model, number_of_layers_expanded)."""
    expanded = []

    def keep(op):  # clone_model's clone_function: share every layer
        if not isinstance(op, keras.layers.Layer) and not allow_ops:
            raise ValueError(
                f"flatten_model: model {model.name!r} contains the raw "
                f"operation {op.name!r} ({type(op).__name__}); only layer "
                "calls can be translated. Wrap it in a keras layer."
            )
        return op

    def call(op, *args, **kwargs):  # clone_model's call_function
        if not isinstance(op, keras.layers.Layer):  # A raw op (allow_ops): kept as it is.
            return op(*args, **kwargs)
        if isinstance(op, keras.layers.InputLayer) or _is_standard(op):
            return op(*args, **kwargs)
        expanded.append(op.name)
        class_name = type(op).__name__
        if class_name in _REPLACEMENTS:
            if op.name not in replaced:
                replaced[op.name] = _REPLACEMENTS[class_name](op)
            return replaced[op.name](*args, **kwargs)
        if not keras_internals.sublayers(op):
            raise ValueError(
                f"flatten_model: layer {op.name!r} ({class_name}) computes "
                "without sublayers and has no registered replacement; see "
                "register_replacement"
            )
        return _traced_call(op)(*args, **kwargs)

    # A fresh functional view of the same graph: clone_model would also copy
    # the compile state of a compiled model, which flattening must not do.
    graph = keras.Model(model.input, model.output, name=model.name)
    flat = keras.models.clone_model(graph, clone_function=keep, call_function=call)
    return flat, len(expanded)


def flatten_model(model, max_depth=8, allow_ops=False) -> keras.Model:
    """Returns a functional model of standard keras layers only.

    Every composite layer is replaced by the nodes its `call()` creates,
    repeatedly, until only built-in layers remain. Layer objects (and their
    variables) are shared with `model`; names are theirs.

    Args:
      model: A built Keras 3 functional model.
      max_depth: Maximum nesting depth of composite layers to expand.
      allow_ops: keep raw `keras.ops` nodes (as keras.applications'
        MobileNetV3 has) instead of refusing them: for counting, not for
        translation.

    Returns:
      A `keras.Model` whose layers are all standard `keras.layers` classes.

    Raises:
      ValueError: If `model` is not functional, uses raw `keras.ops` nodes,
        or nests deeper than `max_depth`.
    """
    if not _is_functional(model):
        raise ValueError(
            f"flatten_model: model must be a built functional keras.Model, "
            f"got {type(model).__name__}"
        )
    flat = model
    replaced = {}
    for _ in range(max_depth):
        flat, count = _flatten_once(flat, replaced, allow_ops)
        if count == 0:
            _check_unique_names(flat)
            return flat
    raise ValueError(
        f"flatten_model: composite layers still present after max_depth={max_depth} expansions"
    )


def _is_functional(model):
    """A built functional model: the kind `keras.models.clone_model` re-traces."""
    if not isinstance(model, keras.Model) or isinstance(model, keras.Sequential):
        return False
    try:
        return bool(model.inputs)
    except AttributeError:  # a subclassed model has no graph
        return False


def _check_unique_names(model):
    seen = set()
    for layer in model.layers:
        if layer.name in seen:
            raise ValueError(
                f"flatten_model: duplicate layer name {layer.name!r}; weights "
                "are transferred by name, so sublayer names must be unique"
            )
        seen.add(layer.name)


def trace_layers(model) -> list[tuple[keras.layers.Layer, list[tuple], tuple]]:
    """Runs the flattened graph symbolically; returns [(layer, input_shapes, output_shape)].

    Raw `keras.ops` nodes (element-wise arithmetic in keras.applications'
    MobileNetV3) come back as their `keras.Operation` in place of a layer.
    """
    flat = flatten_model(model, allow_ops=True)
    records = []

    def record(op, *args, **kwargs):
        out = op(*args, **kwargs)
        ins = args[0] if isinstance(args[0], (list, tuple)) else [args[0]]
        records.append((op, [tuple(t.shape) for t in ins], tuple(out.shape)))
        return out

    keras.models.clone_model(flat, clone_function=lambda op: op, call_function=record)
    return records
