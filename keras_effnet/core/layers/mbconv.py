"""Mobile inverted bottleneck block (MBConv) of EfficientNet."""

import keras

from keras_effnet.core.layers.block import InvertedResidual, batch_norm, output_shape
from keras_effnet.core.layers.common import BN_MOMENTUM, CONV_KERNEL_INITIALIZER

# Kept for callers of the former module-level helper.
build_output_shape = output_shape
DEPTHWISE_NAMES = ("dwconv", "dwconv2")


@keras.saving.register_keras_serializable(package="keras_effnet")
class MBConv(InvertedResidual):
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
    dynamic (`None`), and it saves a PAD op in TFLite. EfficientNetV2 uses
    "same" padding itself.

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
        bn_momentum: BatchNormalization momentum (0.99 in EfficientNet, 0.9
            in EfficientNetV2, as in keras.applications).
        depthwise_name: suffix of the depthwise conv's name: keras.applications
            calls it "dwconv" in EfficientNet and "dwconv2" in EfficientNetV2;
            keeping each family's name lets its official files load by name.
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
        depthwise_name="dwconv",
        **kwargs,
    ):
        super().__init__(
            filters_in,
            filters_out,
            kernel_size,
            strides,
            expand_ratio,
            se_ratio,
            id_skip,
            drop_rate,
            activation,
            bn_momentum,
            **kwargs,
        )
        if depthwise_name not in DEPTHWISE_NAMES:
            raise ValueError(
                f"`depthwise_name` must be one of {DEPTHWISE_NAMES}. "
                f"Received: depthwise_name={depthwise_name!r}"
            )
        self.depthwise_name = depthwise_name
        prefix, momentum = self.name, self.bn_momentum
        filters = filters_in * expand_ratio
        self.expand_layers = []
        if expand_ratio != 1:
            self.expand_layers = [
                keras.layers.Conv2D(
                    filters,
                    1,
                    padding="same",
                    use_bias=False,
                    kernel_initializer=CONV_KERNEL_INITIALIZER,
                    name=f"{prefix}_expand_conv",
                ),
                batch_norm(f"{prefix}_expand_bn", momentum),
                keras.layers.Activation(activation, name=f"{prefix}_expand_activation"),
            ]
        self.depthwise_layers = [
            keras.layers.DepthwiseConv2D(
                kernel_size,
                strides=strides,
                padding="same",
                use_bias=False,
                depthwise_initializer=CONV_KERNEL_INITIALIZER,
                name=f"{prefix}_{depthwise_name}",
            ),
            batch_norm(f"{prefix}_bn", momentum),
            keras.layers.Activation(activation, name=f"{prefix}_activation"),
        ]
        self.se_layers = self._squeeze_excite(filters, filters_in, activation, prefix)
        self.project_layers = [
            keras.layers.Conv2D(
                filters_out,
                1,
                padding="same",
                use_bias=False,
                kernel_initializer=CONV_KERNEL_INITIALIZER,
                name=f"{prefix}_project_conv",
            ),
            batch_norm(f"{prefix}_project_bn", momentum),
        ]
        self._add_skip(self.project_layers)

    @property
    def branch_layers(self) -> list[keras.layers.Layer]:
        """The residual branch's sublayers in call order."""
        return self.expand_layers + self.depthwise_layers + self.se_layers + self.project_layers

    def get_config(self) -> dict:
        config = super().get_config()
        config["depthwise_name"] = self.depthwise_name
        return config
