"""Mobile inverted bottleneck block (MBConv) of EfficientNet."""

import keras

from keras_effnet.layers.common import (
    BN_EPSILON,
    BN_MOMENTUM,
    CONV_KERNEL_INITIALIZER,
    build_chain,
    check_activation,
)
from keras_effnet.layers.squeeze_excite import SqueezeExcite
from keras_effnet.layers.stochastic_depth import StochasticDepth


def _batch_norm(name):
    return keras.layers.BatchNormalization(
        axis=-1, momentum=BN_MOMENTUM, epsilon=BN_EPSILON, name=name
    )


@keras.saving.register_keras_serializable(package="keras_effnet")
class MBConv(keras.layers.Layer):
    """MBConv: expand -> depthwise -> squeeze-excite -> project (+ skip).

    Structure and sublayer names equal keras.applications' EfficientNet block
    (`<name>_expand_conv`, `<name>_dwconv`, `<name>_se_*`, `<name>_project_conv`,
    ...), so official weight files load by layer name. Optional parts (expand
    conv when `expand_ratio == 1`, squeeze-excite when `se_ratio == 0`, the skip
    when shapes change) are absent, not branches at call time.

    Strided depthwise convolutions use TensorFlow "same" padding. For every
    static size that equals keras.applications' `ZeroPadding2D(correct_pad)` +
    "valid" (pad total k - 1 - (n - 1) % 2, the smaller half first); unlike
    `correct_pad`, it is also right for odd sizes when the spatial shape is
    dynamic (`None`), and it saves a PAD op in TFLite.

    Args:
        filters_in: input channels.
        filters_out: output channels.
        kernel_size: depthwise kernel size.
        strides: depthwise stride (1 or 2).
        expand_ratio: expansion factor of the inverted bottleneck.
        se_ratio: squeeze-excite bottleneck ratio relative to `filters_in`
            (0 disables SE).
        id_skip: add the identity skip when `strides == 1` and
            `filters_in == filters_out`.
        drop_rate: stochastic-depth rate of the residual branch (only used
            when the skip exists).
        activation: activation name ("swish" for B0-B7, "relu6" for Lite).
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
        **kwargs,
    ):
        super().__init__(**kwargs)
        for arg, value in (("filters_in", filters_in), ("filters_out", filters_out),
                           ("kernel_size", kernel_size), ("expand_ratio", expand_ratio)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"`{arg}` must be a positive int. Received: {arg}={value!r}")
        if strides not in (1, 2):
            raise ValueError(f"`strides` must be 1 or 2. Received: strides={strides!r}")
        if not 0 <= se_ratio <= 1:
            raise ValueError(f"`se_ratio` must be in [0, 1]. Received: se_ratio={se_ratio!r}")
        self.filters_in = filters_in
        self.filters_out = filters_out
        self.kernel_size = kernel_size
        self.strides = strides
        self.expand_ratio = expand_ratio
        self.se_ratio = float(se_ratio)
        self.id_skip = bool(id_skip)
        self.drop_rate = float(drop_rate)
        self.activation = check_activation(activation)

        prefix = self.name
        filters = filters_in * expand_ratio
        self.expand_layers = []
        if expand_ratio != 1:
            self.expand_layers = [
                keras.layers.Conv2D(
                    filters, 1, padding="same", use_bias=False,
                    kernel_initializer=CONV_KERNEL_INITIALIZER, name=f"{prefix}_expand_conv",
                ),
                _batch_norm(f"{prefix}_expand_bn"),
                keras.layers.Activation(activation, name=f"{prefix}_expand_activation"),
            ]
        self.depthwise_layers = [
            keras.layers.DepthwiseConv2D(
                kernel_size, strides=strides, padding="same", use_bias=False,
                depthwise_initializer=CONV_KERNEL_INITIALIZER, name=f"{prefix}_dwconv",
            ),
            _batch_norm(f"{prefix}_bn"),
            keras.layers.Activation(activation, name=f"{prefix}_activation"),
        ]
        self.se_layers = []
        if 0 < self.se_ratio:
            se_filters = max(1, int(filters_in * self.se_ratio))
            self.se_layers = [SqueezeExcite(filters, se_filters, activation, name=f"{prefix}_se")]
        self.project_layers = [
            keras.layers.Conv2D(
                filters_out, 1, padding="same", use_bias=False,
                kernel_initializer=CONV_KERNEL_INITIALIZER, name=f"{prefix}_project_conv",
            ),
            _batch_norm(f"{prefix}_project_bn"),
        ]
        self.has_skip = self.id_skip and strides == 1 and filters_in == filters_out
        self.skip_layers = []
        if self.has_skip:
            if self.drop_rate > 0:
                self.project_layers.append(StochasticDepth(self.drop_rate, name=f"{prefix}_drop"))
            self.skip_layers = [keras.layers.Add(name=f"{prefix}_add")]

    @property
    def branch_layers(self):
        """The residual branch's sublayers in call order."""
        return self.expand_layers + self.depthwise_layers + self.se_layers + self.project_layers

    def build(self, input_shape):
        if input_shape[-1] != self.filters_in:
            raise ValueError(
                f"Layer {self.name!r} expects {self.filters_in} input channels. "
                f"Received: input_shape={tuple(input_shape)}"
            )
        shape = build_chain(self.branch_layers, input_shape)
        for layer in self.skip_layers:
            layer.build([shape, input_shape])
        self.built = True

    def call(self, inputs, training=None):
        x = inputs
        for layer in self.branch_layers:
            x = layer(x, training=training)
        for layer in self.skip_layers:
            x = layer([x, inputs])
        return x

    def compute_output_shape(self, input_shape):
        return build_output_shape(input_shape, self.strides, self.filters_out)

    def get_config(self):
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
            }
        )
        return config


def build_output_shape(input_shape, strides, filters):
    """Output shape of a "same"-padded conv with `strides` and `filters` channels."""
    spatial = [None if d is None else -(-d // strides) for d in input_shape[1:3]]
    return (input_shape[0], *spatial, filters)
