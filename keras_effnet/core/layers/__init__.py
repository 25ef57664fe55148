"""Keras 3 layers of the EfficientNet family."""

from keras_effnet.core.layers.fused_mbconv import FusedMBConv
from keras_effnet.core.layers.mbconv import MBConv
from keras_effnet.core.layers.squeeze_excite import SqueezeExcite
from keras_effnet.core.layers.stochastic_depth import StochasticDepth

__all__ = ["FusedMBConv", "MBConv", "SqueezeExcite", "StochasticDepth"]
