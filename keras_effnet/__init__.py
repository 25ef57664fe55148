"""keras-effnet: EfficientNet B0-B7, Lite0-4 and EfficientNetV2 for Keras 3.

Quick start::

    import keras_effnet
    model = keras_effnet.EfficientNetB0(weights=None, classes=10)
"""

# First: imports Keras/TensorFlow without their native start-up lines.
from keras_effnet import _quiet_import  # noqa: F401

# isort: split

from keras_effnet.features import FEATURE_STRIDES, feature_extractor
from keras_effnet.models import (
    EfficientNet,
    EfficientNetB0,
    EfficientNetB1,
    EfficientNetB2,
    EfficientNetB3,
    EfficientNetB4,
    EfficientNetB5,
    EfficientNetB6,
    EfficientNetB7,
    EfficientNetLite0,
    EfficientNetLite1,
    EfficientNetLite2,
    EfficientNetLite3,
    EfficientNetLite4,
    EfficientNetV2B0,
    EfficientNetV2B1,
    EfficientNetV2B2,
    EfficientNetV2B3,
    EfficientNetV2L,
    EfficientNetV2M,
    EfficientNetV2S,
    get_model,
)
from keras_effnet.network import build_efficientnet
from keras_effnet.prediction import Category, Prediction, predict
from keras_effnet.profile import model_profile
from keras_effnet.scaling import compound_coefficients, round_filters, round_repeats
from keras_effnet.variants import VARIANTS, get_variant

__version__ = "0.1.0"
