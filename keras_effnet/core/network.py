"""The EfficientNet network: a `builder` plan made into a Keras graph.

`build_efficientnet` validates the arguments, asks `builder.build_plan` for
the stem, blocks and head, refuses networks too large to build, adds the
in-graph preprocessing (see the `keras_effnet.core.models` docstring), builds the
graph and loads weights. The public constructors (`EfficientNetB0`...,
`EfficientNet`, `get_model`) are in `keras_effnet.core.models`.
"""

import dataclasses
import math
import warnings

import keras

from keras_effnet.core import builder, checkpoints, pretrained, variants
from keras_effnet.core import weights as weights_lib
from keras_effnet.core.layers import FusedMBConv, MBConv
from keras_effnet.core.layers.common import (
    BN_EPSILON,
    CONV_KERNEL_INITIALIZER,
    DENSE_KERNEL_INITIALIZER,
    check_activation,
)

MIN_SIZE = 32
# The official ImageNet files were trained with inputs divided by the std (not
# its square root) after Normalization; keras.applications compensates with
# one extra Rescaling when weights="imagenet" (tensorflow/tensorflow#49930).
IMAGENET_STDDEV_RGB = (0.229, 0.224, 0.225)
IMAGENET_MEAN_RGB = (0.485, 0.456, 0.406)


def _input_shape(input_shape, input_tensor, default_size, include_top, weights):
    """Validates and fills in the (H, W, 3) input shape."""
    if input_tensor is not None and input_shape is None:
        input_shape = tuple(input_tensor.shape[1:])
    if input_shape is None:
        return (default_size, default_size, 3) if include_top or weights else (None, None, 3)
    input_shape = tuple(input_shape)
    if len(input_shape) != 3 or input_shape[-1] != 3:
        raise ValueError(
            f"`input_shape` must be (height, width, 3). Received: input_shape={input_shape}"
        )
    for size in input_shape[:2]:
        if size is not None and size < MIN_SIZE:
            raise ValueError(
                f"Input size must be at least {MIN_SIZE}x{MIN_SIZE}. "
                f"Received: input_shape={input_shape}"
            )
    return input_shape


def _validate(weights, include_top, classes, pooling, classifier_activation):
    if not isinstance(classes, int) or classes < 1:
        raise ValueError(f"`classes` must be a positive int. Received: classes={classes!r}")
    if pooling not in (None, "avg", "max"):
        raise ValueError(f'`pooling` must be None, "avg" or "max". Received: pooling={pooling!r}')
    if include_top and classes == 1 and classifier_activation == "softmax":
        raise ValueError(
            "A softmax over one class is always 1.0: use classes >= 2, or "
            'classifier_activation="sigmoid" (or None) for a single-logit model. '
            "Received: classes=1, classifier_activation='softmax'"
        )
    if include_top and pooling is not None:
        # keras.applications drops `pooling` silently here; the classifier always averages.
        warnings.warn(
            f"`pooling` is only used with include_top=False; the classifier head always uses "
            f"global average pooling. Received: include_top=True, pooling={pooling!r}",
            stacklevel=3,
        )
    if weights is not None and include_top and classifier_activation not in (None, "softmax"):
        if weights == "imagenet" or str(weights).startswith(pretrained.TIMM_PREFIX):
            raise ValueError(
                'With pretrained weights, `classifier_activation` must be None or "softmax". '
                f"Received: classifier_activation={classifier_activation!r}"
            )


# Twice EfficientNet-B7 (66,658,687 parameters with its 1000-class top).
MAX_PARAMETERS = 2 * 66_658_687


def _check_size(plan, classes, include_top, include_preprocessing, width, depth):
    """Refuses, before building anything, a network larger than `MAX_PARAMETERS`."""
    count = plan.parameters(classes, include_top, include_preprocessing)
    if count > MAX_PARAMETERS:
        raise ValueError(
            f"This network would have {count:,} parameters ({count * 4 / 2**30:.1f} GiB of float32 "
            f"weights, {len(plan.blocks)} blocks), more than twice EfficientNet-B7's 66.7M; "
            f"building it would likely exhaust memory. Pass allow_large=True to build it anyway. "
            f"Received: width={width:g}, depth={depth:g}"
        )


def _batch_norm(name, momentum):
    return keras.layers.BatchNormalization(momentum=momentum, epsilon=BN_EPSILON, name=name)


def _preprocess(x, kind, weights, normalization=None):
    """In-graph preprocessing of [0, 255] pixels (`variants.PREPROCESSING`).

    `normalization` (a `pretrained.InputNormalization`) is the one a timm
    checkpoint was trained with: EfficientNetV2's constant preprocessing then
    uses it; B0-B7 and Lite keep their Normalization layer, whose statistics
    `_set_normalization` sets once the graph exists.
    """
    if normalization is not None and kind != "normalization":
        x = keras.layers.Rescaling(1.0 / 255.0, name="rescaling")(x)
        return keras.layers.Normalization(
            axis=-1,
            mean=list(normalization.mean),
            variance=[s**2 for s in normalization.std],
            name="normalization",
        )(x)
    if kind == "symmetric":
        # keras.applications EfficientNetV2-S/M/L: x / 128 - 1, in [-1, 0.992].
        return keras.layers.Rescaling(1.0 / 128.0, offset=-1.0, name="rescaling")(x)
    x = keras.layers.Rescaling(1.0 / 255.0, name="rescaling")(x)
    if kind == "imagenet":
        # keras.applications EfficientNetV2-B0..B3: constant ImageNet mean/std.
        return keras.layers.Normalization(
            axis=-1,
            mean=IMAGENET_MEAN_RGB,
            variance=[s**2 for s in IMAGENET_STDDEV_RGB],
            name="normalization",
        )(x)
    x = keras.layers.Normalization(axis=-1, name="normalization")(x)
    if weights == "imagenet":
        x = keras.layers.Rescaling(
            [1.0 / math.sqrt(s) for s in IMAGENET_STDDEV_RGB], name="rescaling_imagenet_std"
        )(x)
    return x


def _set_normalization(model, normalization):
    """Sets the B0-B7/Lite Normalization layer's statistics to a checkpoint's mean and std."""
    layer = next((l for l in model.layers if l.name == "normalization"), None)
    if layer is None or not layer.weights:
        return
    layer.weights[0].assign(keras.ops.convert_to_tensor(normalization.mean, "float32"))
    layer.weights[1].assign(keras.ops.convert_to_tensor([s**2 for s in normalization.std]))
    layer.finalize_state()  # Normalization caches mean/variance


def _read_checkpoint(source, weights_name, include_top, classes):
    """Downloads (once) and reads a timm-format checkpoint: (source, tensors, normalization)."""
    source = pretrained.fetch(source)
    tensors, metadata = checkpoints.read_safetensors(source.path)
    if source.kind == "timm":
        return source, tensors, source.timm_tag.normalization
    _, normalization = pretrained.local_file_info(source.path, metadata, weights_name)
    rows = tensors.get("classifier.bias")
    if include_top and rows is not None and rows.shape[0] != classes:
        raise ValueError(
            f"With weights={source.argument!r} and include_top=True, `classes` must be "
            f"{rows.shape[0]} (the file's classifier). For a new classifier, build with "
            f"include_top=False and add your own head. Received: classes={classes}"
        )
    return source, tensors, normalization


def _block(args, plan):
    layer, extra = (
        (FusedMBConv, {}) if args.fused else (MBConv, {"depthwise_name": plan.depthwise_name})
    )
    return layer(
        args.filters_in,
        args.filters_out,
        kernel_size=args.kernel_size,
        strides=args.strides,
        expand_ratio=args.expand_ratio,
        se_ratio=args.se_ratio,
        drop_rate=args.drop_rate,
        activation=plan.activation,
        bn_momentum=plan.bn_momentum,
        name=args.name,
        **extra,
    )


def build_efficientnet(
    width,
    depth,
    default_size,
    *,
    dropout_rate=0.2,
    drop_connect_rate=0.2,
    lite=False,
    baseline="v1",
    stages=None,
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    include_preprocessing=True,
    name="efficientnet",
    weights_name=None,
    allow_large=False,
    input_normalization=None,
    stem_strides=2,
) -> keras.Model:
    """Builds an EfficientNet (V1, Lite or V2) from scaling coefficients.

    Args:
        width: width coefficient.
        depth: depth coefficient.
        default_size: native resolution (used when `input_shape` is None).
        dropout_rate: dropout before the classifier.
        drop_connect_rate: stochastic-depth rate of the last block.
        lite: EfficientNet-Lite switches (no SE, relu6, stem/head fixed at
            32/1280 channels, first and last stage not repeated).
        baseline: the scaled baseline: "v1" (EfficientNet B0), "v2-b",
            "v2-s", "v2-m", "v2-l" (EfficientNetV2), or a `variants.Baseline`.
        stages: optional stage spec (`variants.StageArgs`) replacing the
            baseline's.
        include_top, weights, input_tensor, input_shape, pooling, classes,
            classifier_activation: as in keras.applications.
        include_preprocessing: include the baseline's in-graph preprocessing
            of [0, 255] pixels (see the module docstring).
        name: model name.
        allow_large: build networks with more than `MAX_PARAMETERS`
            parameters (counted from the plan first, and refused otherwise).
        weights_name: the variant whose pretrained weights `weights` may name
            ("b0".."b7", "lite0".."lite4", "v2b0".."v2b3", "v2s", "v2m", "v2l").
        input_normalization: a `pretrained.InputNormalization` (mean, std of
            [0, 1] pixels) for the in-graph preprocessing, overriding the
            default; weights from a timm checkpoint bring their own.
        stem_strides: 2 (the paper's) or 1 for small inputs (`builder.build_plan`).

    Returns:
        A `keras.Model`.
    """
    _validate(weights, include_top, classes, pooling, classifier_activation)
    source = pretrained.resolve(weights, weights_name, include_top, classes)
    if not 0 <= dropout_rate < 1:
        raise ValueError(f"`dropout_rate` must be in [0, 1). Received: dropout_rate={dropout_rate}")
    base = variants.get_baseline(baseline)
    if stages is not None:
        base = dataclasses.replace(base, stages=tuple(stages))
    plan = builder.build_plan(
        width, depth, drop_connect_rate, lite=lite, baseline=base, stem_strides=stem_strides
    )
    if not allow_large:
        _check_size(plan, classes, include_top, include_preprocessing, width, depth)
    activation = check_activation(plan.activation)
    tensors, normalization = None, input_normalization
    if source is not None and source.kind in ("timm", "safetensors"):
        source, tensors, normalization = _read_checkpoint(
            source, weights_name, include_top, classes
        )
    shape = _input_shape(input_shape, input_tensor, default_size, include_top, weights)
    if input_tensor is None:
        inputs = keras.Input(shape=shape, name="input_layer")
    elif keras.backend.is_keras_tensor(input_tensor):
        inputs = input_tensor
    else:
        inputs = keras.Input(tensor=input_tensor, shape=shape)

    x = inputs
    if include_preprocessing:
        x = _preprocess(
            x,
            plan.preprocessing,
            "imagenet" if source is not None and source.kind == "keras_applications" else None,
            normalization,
        )
    # Stride-2 "same" padding equals keras.applications' correct_pad + "valid"
    # (see layers.MBConv) and stays right for dynamic odd sizes.
    x = keras.layers.Conv2D(
        plan.stem_filters,
        3,
        strides=plan.stem_strides,
        padding="same",
        use_bias=False,
        kernel_initializer=CONV_KERNEL_INITIALIZER,
        name="stem_conv",
    )(x)
    x = _batch_norm("stem_bn", plan.bn_momentum)(x)
    x = keras.layers.Activation(activation, name="stem_activation")(x)
    for args in plan.blocks:
        x = _block(args, plan)(x)
    x = keras.layers.Conv2D(
        plan.head_filters,
        1,
        padding="same",
        use_bias=False,
        kernel_initializer=CONV_KERNEL_INITIALIZER,
        name="top_conv",
    )(x)
    x = _batch_norm("top_bn", plan.bn_momentum)(x)
    x = keras.layers.Activation(activation, name="top_activation")(x)
    if include_top:
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
        if dropout_rate > 0:
            x = keras.layers.Dropout(dropout_rate, name="top_dropout")(x)
        x = keras.layers.Dense(
            classes,
            activation=classifier_activation,
            kernel_initializer=DENSE_KERNEL_INITIALIZER,
            name="predictions",
        )(x)
    elif pooling == "avg":
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    elif pooling == "max":
        x = keras.layers.GlobalMaxPooling2D(name="max_pool")(x)

    if input_tensor is not None:
        inputs = keras.utils.get_source_inputs(input_tensor)
    model = keras.Model(inputs, x, name=name)
    if tensors is not None:
        checkpoints.load_timm_state(model, tensors, source.path)
    elif source is not None:
        weights_lib.load_weights(model, weights, weights_name=weights_name, include_top=include_top)
    if include_preprocessing and normalization is not None:
        _set_normalization(model, normalization)
    return model
