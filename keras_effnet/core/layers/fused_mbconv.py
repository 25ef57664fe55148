"""Fused mobile inverted bottleneck block (Fused-MBConv) of EfficientNetV2."""

import keras

from keras_effnet.core.layers.block import InvertedResidual, batch_norm
from keras_effnet.core.layers.common import BN_MOMENTUM, CONV_KERNEL_INITIALIZER


@keras.saving.register_keras_serializable(package="keras_effnet")
class FusedMBConv(InvertedResidual):
    """Fused-MBConv: k x k conv expand -> squeeze-excite -> 1x1 project (+ skip).

    EfficientNetV2 (https://arxiv.org/abs/2104.00298, section 3.2 and figure 2)
    replaces MBConv's 1x1 expansion and depthwise conv by one regular k x k
    conv in the early stages, where depthwise convs use accelerators poorly.
    With `expand_ratio == 1` the block is a single k x k conv (BatchNorm and
    activation) from `filters_in` to `filters_out`.

    Sublayer names equal keras.applications' `FusedMBConvBlock`
    (`<name>_expand_conv`, `<name>_expand_bn`, `<name>_expand_activation`,
    `<name>_se_*`, `<name>_project_conv`, `<name>_project_bn`, and
    `<name>_project_activation` for the single-conv form), so official
    EfficientNetV2 files load by layer name. Optional parts (the expansion,
    squeeze-excite, the skip) are absent, not branches at call time. Padding
    is "same" throughout, as in keras.applications' EfficientNetV2.

    Args:
        filters_in: input channels.
        filters_out: output channels.
        kernel_size: kernel size of the k x k conv.
        strides: stride of the k x k conv (1 or 2).
        expand_ratio: expansion factor (1: a single conv, no projection).
        se_ratio: squeeze-excite bottleneck ratio relative to `filters_in`
            (0 disables SE; every official EfficientNetV2 fused stage has 0).
        id_skip: add the identity skip when `strides == 1` and
            `filters_in == filters_out`.
        drop_rate: stochastic-depth rate of the residual branch (only used
            when the skip exists).
        activation: activation name.
        bn_momentum: BatchNormalization momentum (0.9 in EfficientNetV2).
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
        prefix, momentum = self.name, self.bn_momentum
        filters = filters_in * expand_ratio
        self.expand_layers = []
        if expand_ratio != 1:
            self.expand_layers = [
                keras.layers.Conv2D(
                    filters,
                    kernel_size,
                    strides=strides,
                    padding="same",
                    use_bias=False,
                    kernel_initializer=CONV_KERNEL_INITIALIZER,
                    name=f"{prefix}_expand_conv",
                ),
                batch_norm(f"{prefix}_expand_bn", momentum),
                keras.layers.Activation(activation, name=f"{prefix}_expand_activation"),
            ]
        self.se_layers = self._squeeze_excite(filters, filters_in, activation, prefix)
        if expand_ratio != 1:
            project = [
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
        else:
            # The single-conv form keeps its activation (keras.applications'
            # `<name>_project_activation`); the 1x1 projection stays linear.
            project = [
                keras.layers.Conv2D(
                    filters_out,
                    kernel_size,
                    strides=strides,
                    padding="same",
                    use_bias=False,
                    kernel_initializer=CONV_KERNEL_INITIALIZER,
                    name=f"{prefix}_project_conv",
                ),
                batch_norm(f"{prefix}_project_bn", momentum),
                keras.layers.Activation(activation, name=f"{prefix}_project_activation"),
            ]
        self.project_layers = project
        self._add_skip(self.project_layers)

    @property
    def branch_layers(self) -> list[keras.layers.Layer]:
        """The residual branch's sublayers in call order."""
        return self.expand_layers + self.se_layers + self.project_layers
