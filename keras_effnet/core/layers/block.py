"""What MBConv and FusedMBConv share: arguments, the residual skip, build/call."""

import keras

from keras_effnet.core.layers.common import (
    BN_EPSILON,
    BN_MOMENTUM,
    Tensor,
    build_chain,
    check_activation,
)
from keras_effnet.core.layers.squeeze_excite import SqueezeExcite
from keras_effnet.core.layers.stochastic_depth import StochasticDepth


def batch_norm(name, momentum=BN_MOMENTUM) -> keras.layers.BatchNormalization:
    """BatchNormalization over channels with the reference epsilon."""
    return keras.layers.BatchNormalization(
        axis=-1, momentum=momentum, epsilon=BN_EPSILON, name=name
    )


def output_shape(input_shape, strides, filters) -> tuple:
    """Output shape of a "same"-padded conv with `strides` and `filters` channels."""
    spatial = [None if d is None else -(-d // strides) for d in input_shape[1:3]]
    return (input_shape[0], *spatial, filters)


class InvertedResidual(keras.layers.Layer):
    """Base of the inverted-bottleneck blocks: a residual branch plus an identity skip.

    Subclasses create their branch sublayers in `__init__` (after calling this
    constructor), expose them in call order as `branch_layers`, then call
    `_add_skip()`. The skip exists when `id_skip`, `strides == 1` and
    `filters_in == filters_out`; stochastic depth then ends the branch.

    Args:
        filters_in: input channels.
        filters_out: output channels.
        kernel_size: kernel size of the spatial convolution.
        strides: stride of the spatial convolution (1 or 2).
        expand_ratio: expansion factor of the inverted bottleneck.
        se_ratio: squeeze-excite bottleneck ratio relative to `filters_in`
            (0 disables SE).
        id_skip: add the identity skip when the shapes allow it.
        drop_rate: stochastic-depth rate of the residual branch.
        activation: activation name.
        bn_momentum: BatchNormalization momentum.
    """

    def __init__(
        self,
        filters_in,
        filters_out,
        kernel_size=3,
        strides=1,
        expand_ratio=1,
        se_ratio=0.0,
        id_skip=True,
        drop_rate=0.0,
        activation="swish",
        bn_momentum=BN_MOMENTUM,
        **kwargs,
    ):
        super().__init__(**kwargs)
        for arg, value in (
            ("filters_in", filters_in),
            ("filters_out", filters_out),
            ("kernel_size", kernel_size),
            ("expand_ratio", expand_ratio),
        ):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"`{arg}` must be a positive int. Received: {arg}={value!r}")
        if strides not in (1, 2):
            raise ValueError(f"`strides` must be 1 or 2. Received: strides={strides!r}")
        if not 0 <= se_ratio <= 1:
            raise ValueError(f"`se_ratio` must be in [0, 1]. Received: se_ratio={se_ratio!r}")
        if not 0 <= drop_rate < 1:
            raise ValueError(f"`drop_rate` must be in [0, 1). Received: drop_rate={drop_rate!r}")
        if not 0 <= bn_momentum < 1:
            raise ValueError(
                f"`bn_momentum` must be in [0, 1). Received: bn_momentum={bn_momentum!r}"
            )
        self.filters_in = filters_in
        self.filters_out = filters_out
        self.kernel_size = kernel_size
        self.strides = strides
        self.expand_ratio = expand_ratio
        self.se_ratio = float(se_ratio)
        self.id_skip = bool(id_skip)
        self.drop_rate = float(drop_rate)
        self.activation = check_activation(activation)
        self.bn_momentum = float(bn_momentum)
        self.has_skip = self.id_skip and strides == 1 and filters_in == filters_out
        self.skip_layers = []

    def _squeeze_excite(self, filters, filters_in, activation, prefix):
        """The squeeze-excite sublayer list (empty without SE); SE width from the block input."""
        if not 0 < self.se_ratio:
            return []
        se_filters = max(1, int(filters_in * self.se_ratio))
        return [SqueezeExcite(filters, se_filters, activation, name=f"{prefix}_se")]

    def _add_skip(self, branch_end):
        """Appends stochastic depth to `branch_end` (a sublayer list) and creates the Add."""
        if self.has_skip:
            if self.drop_rate > 0:
                branch_end.append(StochasticDepth(self.drop_rate, name=f"{self.name}_drop"))
            self.skip_layers = [keras.layers.Add(name=f"{self.name}_add")]

    @property
    def branch_layers(self) -> list[keras.layers.Layer]:
        """The residual branch's sublayers in call order."""
        raise NotImplementedError

    def build(self, input_shape) -> None:
        if input_shape[-1] != self.filters_in:
            raise ValueError(
                f"Layer {self.name!r} expects {self.filters_in} input channels. "
                f"Received: input_shape={tuple(input_shape)}"
            )
        shape = build_chain(self.branch_layers, input_shape)
        for layer in self.skip_layers:
            layer.build([shape, input_shape])
        self.built = True

    def call(self, inputs, training=None) -> Tensor:
        x = inputs
        for layer in self.branch_layers:
            x = layer(x, training=training)
        for layer in self.skip_layers:
            x = layer([x, inputs])
        return x

    def compute_output_shape(self, input_shape) -> tuple:
        return output_shape(input_shape, self.strides, self.filters_out)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "filters_in": self.filters_in,
                "filters_out": self.filters_out,
                "kernel_size": self.kernel_size,
                "strides": self.strides,
                "expand_ratio": self.expand_ratio,
                "se_ratio": self.se_ratio,
                "id_skip": self.id_skip,
                "drop_rate": self.drop_rate,
                "activation": self.activation,
                "bn_momentum": self.bn_momentum,
            }
        )
        return config
