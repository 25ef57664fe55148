"""Initializers and constants shared by the model core (keras.applications-compatible)."""

import typing

# What `call()` takes and returns: a backend tensor (tf.Tensor, jax.Array,
# torch.Tensor) or, while a functional model is built, a `keras.KerasTensor`.
Tensor = typing.Any

# He-normal (fan_out, truncated) for convolutions, as in the reference model.
CONV_KERNEL_INITIALIZER = {
    "class_name": "VarianceScaling",
    "config": {"scale": 2.0, "mode": "fan_out", "distribution": "truncated_normal"},
}
DENSE_KERNEL_INITIALIZER = {
    "class_name": "VarianceScaling",
    "config": {"scale": 1.0 / 3.0, "mode": "fan_out", "distribution": "uniform"},
}
BN_MOMENTUM = 0.99
BN_EPSILON = 1e-3
ACTIVATIONS = ("swish", "silu", "relu6", "relu", "hard_swish", "gelu")


def check_activation(activation) -> str:
    """Validates an activation name (a JSON primitive, so configs stay portable)."""
    if activation not in ACTIVATIONS:
        raise ValueError(
            f"Unsupported activation. Received: activation={activation!r}; "
            f"expected one of {ACTIVATIONS}."
        )
    return activation


def build_chain(layers, input_shape) -> tuple:
    """Builds `layers` in sequence, threading the output shape; returns the last shape."""
    shape = input_shape
    for layer in layers:
        if not layer.built:
            layer.build(shape)
        shape = layer.compute_output_shape(shape)
    return shape
