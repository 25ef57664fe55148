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


def _is_standard(layer):
    """True for built-in keras layers (not models, not user subclasses)."""
    module = type(layer).__module__
    return module.startswith("keras.src.layers.") and not isinstance(layer, keras.Model)


def _replace_stochastic_depth(layer):
    # keras_effnet.layers.StochasticDepth is documented as exactly a
    # per-sample Dropout; tfmot accepts Dropout(noise_shape) as is.
    return keras.layers.Dropout(
        layer.rate, noise_shape=(None, 1, 1, 1), seed=layer.seed, name=layer.name
    )


# Leaf custom layers (arbitrary ops, no sublayers) -> an equivalent standard
# keras layer, keyed by class name. Extend with `register_replacement`.
_REPLACEMENTS = {"StochasticDepth": _replace_stochastic_depth}


def register_replacement(class_name, fn):
    """Registers `fn(layer) -> standard keras layer` for a leaf custom layer.

    `flatten_model` expands composite layers by tracing their `call()`; a
    custom layer that computes with ops instead of sublayers needs an
    equivalent standard layer (same name, same weights) to stand in for it.
    """
    _REPLACEMENTS[class_name] = fn


def _sublayers(layer):
    return list(
        layer._flatten_layers(  # pylint: disable=protected-access
            include_self=False, recursive=False
        )
    )


def _traced_call(layer):
    """`layer.call`, dropping call kwargs it does not accept (as __call__)."""
    params = inspect.signature(layer.call).parameters
    if any(p.kind == p.VAR_KEYWORD for p in params.values()):
        return layer.call

    def call(*args, **kwargs):
        return layer.call(*args, **{k: v for k, v in kwargs.items() if k in params})

    return call


def _flatten_once(model, replaced):
    """One re-trace; returns (new_model, number_of_layers_expanded)."""
    expanded = []

    def operation_fn(op):
        if isinstance(op, keras.layers.InputLayer):
            return op
        if not isinstance(op, keras.layers.Layer):
            raise ValueError(
                f"flatten_model: model {model.name!r} contains the raw "
                f"operation {op.name!r} ({type(op).__name__}); only layer "
                "calls can be translated. Wrap it in a keras layer."
            )
        if _is_standard(op):
            return op
        expanded.append(op.name)
        class_name = type(op).__name__
        if class_name in _REPLACEMENTS:
            if op.name not in replaced:
                replaced[op.name] = _REPLACEMENTS[class_name](op)
            return replaced[op.name]
        if not _sublayers(op):
            raise ValueError(
                f"flatten_model: layer {op.name!r} ({class_name}) computes "
                "without sublayers and has no registered replacement; see "
                "register_replacement"
            )
        return _traced_call(op)

    inputs = [keras.Input(batch_shape=x.shape, dtype=x.dtype, name=x.name) for x in model.inputs]
    outputs = model._run_through_graph(  # pylint: disable=protected-access
        inputs, operation_fn=operation_fn
    )
    flat = keras.Model(inputs if len(inputs) > 1 else inputs[0], outputs, name=model.name)
    return flat, len(expanded)


def flatten_model(model, max_depth=8):
    """Returns a functional model of standard keras layers only.

    Every composite layer is replaced by the nodes its `call()` creates,
    repeatedly, until only built-in layers remain. Layer objects (and their
    variables) are shared with `model`; names are theirs.

    Args:
      model: A built Keras 3 functional model.
      max_depth: Maximum nesting depth of composite layers to expand.

    Returns:
      A `keras.Model` whose layers are all standard `keras.layers` classes.

    Raises:
      ValueError: If `model` is not functional, uses raw `keras.ops` nodes,
        or nests deeper than `max_depth`.
    """
    if not hasattr(model, "_run_through_graph") or not model.inputs:
        raise ValueError(
            f"flatten_model: model must be a built functional keras.Model, "
            f"got {type(model).__name__}"
        )
    flat = model
    replaced = {}
    for _ in range(max_depth):
        flat, count = _flatten_once(flat, replaced)
        if count == 0:
            _check_unique_names(flat)
            return flat
    raise ValueError(
        f"flatten_model: composite layers still present after max_depth={max_depth} expansions"
    )


def _check_unique_names(model):
    seen = set()
    for layer in model.layers:
        if layer.name in seen:
            raise ValueError(
                f"flatten_model: duplicate layer name {layer.name!r}; weights "
                "are transferred by name, so sublayer names must be unique"
            )
        seen.add(layer.name)


def trace_layers(model):
    """Runs the flattened graph symbolically; returns [(layer, input_shapes, output_shape)]."""
    flat = flatten_model(model)
    records = []

    def record(op):
        def wrapped(*args, **kwargs):
            out = op(*args, **kwargs)
            ins = args[0] if isinstance(args[0], (list, tuple)) else [args[0]]
            records.append((op, [tuple(t.shape) for t in ins], tuple(out.shape)))
            return out

        return wrapped

    inputs = [keras.Input(batch_shape=x.shape, dtype=x.dtype, name=x.name) for x in flat.inputs]
    flat._run_through_graph(inputs, operation_fn=record)  # pylint: disable=protected-access
    return records
