"""Loading weights: official keras.applications files, legacy h5 by name, our own files.

The official EfficientNet and EfficientNetV2 ImageNet files are Keras-2
`save_weights` HDF5 files (root attribute `layer_names`, one group per layer
with `weight_names`). Our blocks nest the same layers under MBConv /
FusedMBConv layers with the same names (V2's depthwise conv keeps its
`<block>_dwconv2` name), so the files load by layer name into the nested
layers. keras.applications' EfficientNetV2 keeps its preprocessing constants
out of the weights, so its files have no normalization layer.
"""

import os
import re

import h5py
import keras
import numpy as np

from keras_effnet import keras_internals

BASE_WEIGHTS_URL = "https://storage.googleapis.com/keras-applications/"
V2_BASE_WEIGHTS_URL = (
    "https://storage.googleapis.com/tensorflow/keras-applications/efficientnet_v2/"
)
# md5 of efficientnet{b}.h5 and efficientnet{b}_notop.h5 (the hashes keras.applications publishes).
IMAGENET_WEIGHTS_HASHES = {
    "b0": ("902e53a9f72be733fc0bcb005b3ebbac", "50bc09e76180e00e4465e1a485ddc09d"),
    "b1": ("1d254153d4ab51201f1646940f018540", "74c4e6b3e1f6a1eea24c589628592432"),
    "b2": ("b15cce36ff4dcbd00b6dd88e7857a6ad", "111f8e2ac8aa800a7a99e3239f7bfb39"),
    "b3": ("ffd1fdc53d0ce67064dc6a9c7960ede0", "af6d107764bb5b1abb91932881670226"),
    "b4": ("18c95ad55216b8f92d7e70b3a046e2fc", "ebc24e6d6c33eaebbd558eafbeedf1ba"),
    "b5": ("ace28f2a6363774853a83a0b21b9421a", "38879255a25d3c92d5e44e04ae6cec6f"),
    "b6": ("165f6e37dce68623721b423839de8be5", "9ecce42647a20130c1f39a5d4cb75743"),
    "b7": ("8c03f828fec3ef71311cd463b6759d99", "cbcfe4450ddf6f3ad90b1b398090fe4a"),
    # efficientnetv2-{b0..b3,s,m,l}.h5 and _notop.h5 (keras.applications.efficientnet_v2).
    "v2b0": ("21ecbf6da12460d5c40bb2f29ceb2188", "893217f2bb855e2983157299931e43ff"),
    "v2b1": ("069f0534ff22adf035c89e2d9547a9dc", "0e80663031ca32d657f9caa404b6ec37"),
    "v2b2": ("424e49f28180edbde1e94797771950a7", "1dfe2e7a5d45b6632553a8961ea609eb"),
    "v2b3": ("1f1fc43bd98a6e4fd8fdfd551e02c7a0", "f6abf7b5849ac99a89b50dd3fd532856"),
    "v2s": ("e1d88a8495beba45748fedd0cecbe016", "af0682fb74e8c54910f2d4393339c070"),
    "v2m": ("a3bf6aa3276309f4fc6a34aa114c95cd", "1b8dc055df72dde80d614482840fe342"),
    "v2l": ("27e6d408b53c7ebc868fefa357689935", "b0b66b5c863aef5b46e8608fe1711615"),
}
# Variable names that differ between Keras 2 files and Keras 3 layers.
_NAME_ALIASES = {"depthwise_kernel": "kernel"}


def imagenet_weights_path(weights_name, include_top) -> str:
    """Downloads (once) and returns the official ImageNet file ("b0".."b7", "v2b0".."v2l")."""
    top_hash, notop_hash = IMAGENET_WEIGHTS_HASHES[weights_name]
    if weights_name.startswith("v2"):
        stem, base_url = f"efficientnetv2-{weights_name[2:]}", V2_BASE_WEIGHTS_URL
    else:
        stem, base_url = f"efficientnet{weights_name}", BASE_WEIGHTS_URL
    file_name = f"{stem}{'' if include_top else '_notop'}.h5"
    return keras.utils.get_file(
        file_name,
        base_url + file_name,
        cache_subdir="models",
        file_hash=top_hash if include_top else notop_hash,
    )


def load_weights(model, weights, weights_name=None, include_top=True) -> None:
    """Loads `weights` (None, "imagenet" or a path) into `model` in place."""
    if weights is None:
        return
    if weights == "imagenet":
        path = imagenet_weights_path(weights_name, include_top)
    else:
        path = os.fspath(weights)
    if path.endswith(".weights.h5"):
        _load_keras3_weights(model, path)
    elif path.endswith((".h5", ".hdf5")):
        load_legacy_h5(model, path)
    else:
        raise ValueError(
            "Weights must be a legacy `.h5` (official format) or a `.weights.h5` file. "
            f"Received: weights={path!r}"
        )


def _load_keras3_weights(model, path):
    try:
        model.load_weights(path)
    except Exception as err:  # Keras raises several types; report one clear error.
        raise ValueError(
            f"Could not load weights from {path!r} into {model.name!r} "
            f"(different architecture or corrupt file): {err}"
        ) from err


def named_layers(model) -> dict[str, keras.layers.Layer]:
    """Maps every layer name in `model`, including nested block sublayers, to its layer."""
    layers = {}
    for layer in keras_internals.flatten_layers(model):
        layers.setdefault(layer.name, layer)
    return layers


def _short(name):
    """'block1a_dwconv/depthwise_kernel:0' -> 'kernel'."""
    leaf = name.split("/")[-1].split(":")[0]
    return _NAME_ALIASES.get(leaf, leaf)


def read_legacy_h5(path) -> dict[str, list[tuple[str, np.ndarray]]]:
    """Reads a Keras-2 style weights file into {layer_name: [(weight_name, array), ...]}."""
    try:
        with h5py.File(path, "r") as f:
            group = f["model_weights"] if "model_weights" in f else f
            if "layer_names" not in group.attrs:
                raise ValueError("no `layer_names` attribute")
            result = {}
            for raw in group.attrs["layer_names"]:
                layer_name = raw.decode("utf8") if isinstance(raw, bytes) else str(raw)
                layer_group = group[layer_name]
                names = [
                    n.decode("utf8") if isinstance(n, bytes) else str(n)
                    for n in layer_group.attrs.get("weight_names", [])
                ]
                if names:
                    result[layer_name] = [(n, np.asarray(layer_group[n])) for n in names]
            return result
    except ValueError as err:
        raise ValueError(f"Not a Keras legacy weights file: {path!r} ({err})") from err
    except (OSError, KeyError) as err:
        raise ValueError(f"Corrupt or unreadable weights file: {path!r} ({err})") from err


def load_legacy_h5(model, path, skip_missing=("normalization",)) -> None:
    """Loads an official-format `.h5` into `model` by layer name.

    Every weight-bearing layer of the model must be in the file and vice versa
    (a preprocessing Normalization absent from the model is skipped), and
    every array must match its variable's shape; otherwise a `ValueError`
    names the layer. Nothing is assigned unless the whole file matches.
    """
    stored = read_legacy_h5(path)
    layers = {
        name: layer
        for name, layer in named_layers(model).items()
        if layer.weights and not layer._layers
    }
    stored_names = {
        "normalization" if re.fullmatch(r"normalization(_\d+)?", n) else n for n in stored
    }
    missing = sorted(set(layers) - stored_names)
    if missing:
        raise ValueError(
            f"Weights file {path!r} does not match model {model.name!r}: it has no weights for "
            f"layer {missing[0]!r} ({len(missing)} layers missing; wrong variant or include_top?)"
        )
    assignments = []
    for layer_name, arrays in stored.items():
        # keras.applications leaves its preprocessing layer unnamed, so files
        # call it "normalization", "normalization_1", ...
        if layer_name not in layers and re.fullmatch(r"normalization(_\d+)?", layer_name):
            layer_name = "normalization"
        layer = layers.get(layer_name)
        if layer is None:
            if layer_name.startswith(skip_missing):
                continue
            raise ValueError(
                f"Weights file {path!r} does not match model {model.name!r}: file layer "
                f"{layer_name!r} has no counterpart (wrong variant or include_top?)"
            )
        variables = layer.weights
        if len(variables) != len(arrays):
            raise ValueError(
                f"Layer {layer_name!r}: file has {len(arrays)} weights, model has {len(variables)}"
            )
        by_name = {_short(n): a for n, a in arrays}
        for index, variable in enumerate(variables):
            value = by_name.get(_short(variable.path), arrays[index][1])
            if tuple(value.shape) != tuple(variable.shape):
                raise ValueError(
                    f"Layer {layer_name!r}, weight {variable.name!r}: file shape "
                    f"{tuple(value.shape)} != model shape {tuple(variable.shape)} "
                    "(wrong variant for this file?)"
                )
            assignments.append((variable, value))
    for variable, value in assignments:
        variable.assign(value)
    for layer in layers.values():
        if hasattr(layer, "finalize_state"):
            layer.finalize_state()  # Normalization caches its statistics
