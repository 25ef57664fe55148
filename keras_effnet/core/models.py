"""EfficientNet models: the public constructors (the network is `keras_effnet.core.network`).

Used exactly like keras.applications::

    model = keras_effnet.EfficientNetB1(weights=None)
    model = keras_effnet.EfficientNetLite0(classes=10, input_shape=(128, 128, 3))
    model = keras_effnet.EfficientNet(phi=2.5)  # compound scaling, any phi
    model = keras_effnet.EfficientNetV2S(weights=None)

Preprocessing contract: every model takes RGB pixels in [0, 255] (float).
With `include_preprocessing=True` (default) the model maps them in-graph the
way its reference does (docs/models.md "EfficientNetV2"):
  * EfficientNet B0-B7 and Lite: rescale by 1/255, then a `Normalization`
    layer whose mean and variance are weights (0 and 1 until weights set them;
    the ImageNet files carry the ImageNet statistics);
  * EfficientNetV2 B0-B3: rescale by 1/255, then constant ImageNet mean/std;
  * EfficientNetV2 S, M, L: x / 128 - 1 (range [-1, 0.992]).
With `include_preprocessing=False` the caller applies that mapping.
"""

import keras

from keras_effnet.core import pretrained, scaling, variants
from keras_effnet.core.network import build_efficientnet

_COMMON_DOC = """
    Args:
        include_top: include the classifier (avg pool, dropout, Dense).
        weights: None; "imagenet" (B0-B7 and EfficientNetV2: keras.applications'
            official files, md5-checked; Lite0-4: timm's port of the official
            Lite checkpoint), downloaded once into ~/.keras/models;
            "timm:<architecture>.<tag>" (a timm tf_ checkpoint, e.g.
            "timm:tf_efficientnet_b0.ns_jft_in1k"); or a path: a timm-format
            `.safetensors`, an official-format legacy `.h5` (loaded by layer
            name) or a `.weights.h5` saved from a keras-effnet model. See
            docs/models.md "Pretrained weights".
        input_tensor: optional Keras tensor to use as the image input.
        input_shape: (height, width, 3); each side >= 32 or None (dynamic).
            Defaults to the native resolution, or (None, None, 3) without
            top and weights.
        pooling: None, "avg" or "max" when `include_top=False`.
        classes: number of classes of the classifier.
        classifier_activation: activation of the classifier ("softmax", None).
        include_preprocessing: map [0, 255] pixels in-graph as the reference
            does (see the `keras_effnet.core.models` docstring).
        dropout_rate: dropout before the classifier (None = the variant's).
        drop_connect_rate: stochastic-depth rate of the last block.
        name: model name (defaults to the keras.applications name).
        input_normalization: `keras_effnet.core.pretrained.InputNormalization`
            (mean and std of [0, 1] pixels) for the in-graph preprocessing;
            None = the weights' own (timm sources) or the default above.
        stem_strides: 2 (the paper's) or 1: the stem keeps full resolution, so
            a 32 px input ends on a 2x2 feature map instead of 1x1 (for inputs
            under 64 px; docs/training.md "Small images"). Same weights.

    Returns:
        A `keras.Model` taking RGB pixels in [0, 255].
"""


def _variant_constructor(key):
    variant = variants.get_variant(key)

    def constructor(
        include_top=True,
        weights=None,
        input_tensor=None,
        input_shape=None,
        pooling=None,
        classes=1000,
        classifier_activation="softmax",
        include_preprocessing=True,
        dropout_rate=None,
        drop_connect_rate=0.2,
        name=None,
        input_normalization=None,
        stem_strides=2,
    ) -> keras.Model:
        return build_efficientnet(
            variant.width,
            variant.depth,
            variant.resolution,
            dropout_rate=variant.dropout if dropout_rate is None else dropout_rate,
            drop_connect_rate=drop_connect_rate,
            lite=variant.lite,
            baseline=variant.baseline,
            include_top=include_top,
            weights=weights,
            input_tensor=input_tensor,
            input_shape=input_shape,
            pooling=pooling,
            classes=classes,
            classifier_activation=classifier_activation,
            include_preprocessing=include_preprocessing,
            name=name or variant.model_name,
            weights_name=variant.name,
            input_normalization=input_normalization,
            stem_strides=stem_strides,
        )

    constructor.__name__ = variant.constructor_name
    constructor.__doc__ = (
        f"Instantiates {variant.label} (width {variant.width}, depth {variant.depth}, "
        f"native resolution {variant.resolution}).\n" + _COMMON_DOC
    )
    return constructor


EfficientNetB0 = _variant_constructor("b0")
EfficientNetB1 = _variant_constructor("b1")
EfficientNetB2 = _variant_constructor("b2")
EfficientNetB3 = _variant_constructor("b3")
EfficientNetB4 = _variant_constructor("b4")
EfficientNetB5 = _variant_constructor("b5")
EfficientNetB6 = _variant_constructor("b6")
EfficientNetB7 = _variant_constructor("b7")
EfficientNetLite0 = _variant_constructor("lite0")
EfficientNetLite1 = _variant_constructor("lite1")
EfficientNetLite2 = _variant_constructor("lite2")
EfficientNetLite3 = _variant_constructor("lite3")
EfficientNetLite4 = _variant_constructor("lite4")
EfficientNetV2B0 = _variant_constructor("v2b0")
EfficientNetV2B1 = _variant_constructor("v2b1")
EfficientNetV2B2 = _variant_constructor("v2b2")
EfficientNetV2B3 = _variant_constructor("v2b3")
EfficientNetV2S = _variant_constructor("v2s")
EfficientNetV2M = _variant_constructor("v2m")
EfficientNetV2L = _variant_constructor("v2l")


def EfficientNet(
    phi=1.0,
    alpha=1.2,
    beta=1.1,
    gamma=1.15,
    base_resolution=224,
    *,
    lite=False,
    dropout_rate=0.2,
    name=None,
    **kwargs,
) -> keras.Model:
    """EfficientNet scaled from B0 by the compound coefficient `phi`.

    depth = alpha**phi, width = beta**phi, resolution = base_resolution *
    gamma**phi (rounded to the nearest integer). The paper's grid search found
    alpha=1.2, beta=1.1, gamma=1.15 under alpha * beta**2 * gamma**2 ~= 2; a
    warning names the product when it is more than 10% from 2.

    Args:
        phi: compound coefficient (>= 0).
        alpha, beta, gamma: depth, width and resolution bases (>= 1).
        base_resolution: resolution of the phi=0 baseline (>= 32).
        lite: build with the Lite switches.
        dropout_rate: dropout before the classifier.
        name: model name (default "efficientnet_phi<phi>").
        **kwargs: include_top, weights (None or a path), input_tensor,
            input_shape, pooling, classes, classifier_activation,
            include_preprocessing, drop_connect_rate, allow_large, stem_strides.

    Returns:
        A `keras.Model`.
    """
    coeffs = scaling.compound_coefficients(phi, alpha, beta, gamma)
    weights = kwargs.get("weights")
    if weights == "imagenet" or str(weights).startswith(pretrained.TIMM_PREFIX):
        raise ValueError(
            'weights="imagenet" and timm tags exist only for the named variants; use a file path '
            f"for custom scaling. Received: weights={weights!r}"
        )
    resolution = scaling.scaled_resolution(base_resolution, coeffs.resolution)
    return build_efficientnet(
        coeffs.width,
        coeffs.depth,
        resolution,
        dropout_rate=dropout_rate,
        lite=lite,
        name=name or f"efficientnet_phi{phi:g}".replace(".", "_"),
        **kwargs,
    )


_CONSTRUCTORS = {v: _variant_constructor(v) for v in variants.VARIANTS}


def get_model(name, **kwargs) -> keras.Model:
    """Builds a named variant ("b0".."b7", "lite0".."lite4", "v2b0".."v2b3", "v2s", "v2m",
    "v2l"); kwargs as the constructors."""
    variant = variants.get_variant(name)
    return _CONSTRUCTORS[variant.name](**kwargs)
