"""Multi-scale feature maps for detection/segmentation backbones."""

import keras

# Output stride of each pyramid level: P1 (stride 2) ... P5 (stride 32).
FEATURE_STRIDES = {"P1": 2, "P2": 4, "P3": 8, "P4": 16, "P5": 32}


def feature_layer_names(model) -> dict[str, str]:
    """Names of the last layer at each output stride (P1..P5) of an EfficientNet.

    The last block before every stride change, and `top_activation` for P5
    (after the head conv). Works for any input size, including dynamic ones,
    and for every family (MBConv and EfficientNetV2's FusedMBConv blocks both
    expose `strides`).
    """
    blocks = [layer for layer in model.layers if layer.name.startswith("block")]
    if not blocks:
        raise ValueError(
            f"Model {model.name!r} has no EfficientNet blocks (layers named 'block*')."
        )
    names, stride = {}, 2
    for layer, following in zip(blocks, blocks[1:] + [None]):
        if following is None or following.strides == 2:
            names[f"P{stride.bit_length() - 1}"] = layer.name
            stride *= 2
    names["P5"] = "top_activation"
    return names


def feature_extractor(model) -> keras.Model:
    """Returns a model mapping images to {"P1": ..., "P5": ...} feature maps.

    Example::

        base = keras_effnet.EfficientNetB0(include_top=False, input_shape=(256, 256, 3))
        backbone = keras_effnet.feature_extractor(base)
        maps = backbone(images)  # maps["P3"].shape == (batch, 32, 32, 40)

    Args:
        model: an EfficientNet from this package (with or without top).
    """
    names = feature_layer_names(model)
    outputs = {level: model.get_layer(name).output for level, name in names.items()}
    return keras.Model(model.inputs, outputs, name=f"{model.name}_features")
