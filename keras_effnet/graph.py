"""Graph utilities: flatten nested blocks into a functional graph of standard layers."""

import inspect

import keras

from keras_effnet.layers import MBConv, SqueezeExcite

# Our layers whose call() only composes sublayers; flattening calls `.call`
# directly so that each sublayer becomes its own node (sharing its variables).
COMPOSITE_LAYERS = (MBConv, SqueezeExcite)


def _is_composite(operation):
    return isinstance(operation, COMPOSITE_LAYERS)


def _expand_once(model, operation_fn):
    inputs = [
        keras.Input(batch_shape=t.shape, dtype=t.dtype, name=t._keras_history.operation.name)
        for t in model.inputs
    ]
    outputs = model._run_through_graph(inputs, operation_fn=operation_fn)
    if isinstance(outputs, (list, tuple)) and len(outputs) == 1:
        outputs = outputs[0]
    return keras.Model(inputs, outputs, name=model.name)


def _call_of(operation):
    """`operation.call` without keyword arguments its signature does not take."""
    accepted = inspect.signature(operation.call).parameters

    def call(*args, **kwargs):
        return operation.call(*args, **{k: v for k, v in kwargs.items() if k in accepted})

    return call


def flatten_model(model):
    """Returns a functional model of standard Keras layers equal to `model`.

    Every MBConv/SqueezeExcite is replaced by its sublayers (the same layer
    objects, so weights are shared, not copied). The result is what
    quantization tooling and per-layer profiling need.
    """
    flat = model
    while any(_is_composite(layer) for layer in flat.layers):
        flat = _expand_once(flat, lambda op: _call_of(op) if _is_composite(op) else op)
    return flat


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

    _expand_once(flat, record)
    return records
