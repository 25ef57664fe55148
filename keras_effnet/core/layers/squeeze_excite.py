"""Squeeze-and-excitation channel gate."""

import keras

from keras_effnet.core.layers.common import (
    CONV_KERNEL_INITIALIZER,
    Tensor,
    build_chain,
    check_activation,
)


@keras.saving.register_keras_serializable(package="keras_effnet")
class SqueezeExcite(keras.layers.Layer):
    """Squeeze-and-excitation (Hu et al., 2018) as used by EfficientNet.

    global average pool -> 1x1 conv (`se_filters`) -> activation -> 1x1 conv
    (`filters`, sigmoid) -> multiply with the input. Sublayer names follow
    keras.applications (`<name>_squeeze`, `<name>_reduce`, `<name>_expand`,
    `<name>_excite`) so official weights load by name. The reduce activation is
    its own `Activation` layer (`<name>_reduce_activation`) rather than fused
    into the conv: quantization-aware training can then fake-quantize the
    pre-activation, which keeps the SE path integer in TFLite.

    Args:
        filters: channels of the input (and of the gate).
        se_filters: channels of the bottleneck.
        activation: activation after the reduce conv.
    """

    def __init__(self, filters, se_filters, activation="swish", **kwargs):
        super().__init__(**kwargs)
        for arg, value in (("filters", filters), ("se_filters", se_filters)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"`{arg}` must be a positive int. Received: {arg}={value!r}")
        self.filters = filters
        self.se_filters = se_filters
        self.activation = check_activation(activation)
        prefix = self.name
        self.squeeze = keras.layers.GlobalAveragePooling2D(keepdims=True, name=f"{prefix}_squeeze")
        self.reduce = keras.layers.Conv2D(
            se_filters,
            1,
            padding="same",
            kernel_initializer=CONV_KERNEL_INITIALIZER,
            name=f"{prefix}_reduce",
        )
        self.reduce_activation = keras.layers.Activation(
            activation, name=f"{prefix}_reduce_activation"
        )
        self.expand = keras.layers.Conv2D(
            filters,
            1,
            padding="same",
            activation="sigmoid",
            kernel_initializer=CONV_KERNEL_INITIALIZER,
            name=f"{prefix}_expand",
        )
        self.excite = keras.layers.Multiply(name=f"{prefix}_excite")

    def build(self, input_shape) -> None:
        build_chain([self.squeeze, self.reduce, self.reduce_activation, self.expand], input_shape)
        self.excite.build([input_shape, (input_shape[0], 1, 1, self.filters)])
        self.built = True

    def call(self, inputs) -> Tensor:
        gate = self.squeeze(inputs)
        gate = self.reduce(gate)
        gate = self.reduce_activation(gate)
        gate = self.expand(gate)
        return self.excite([inputs, gate])

    def compute_output_shape(self, input_shape) -> tuple:
        return input_shape

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {"filters": self.filters, "se_filters": self.se_filters, "activation": self.activation}
        )
        return config
