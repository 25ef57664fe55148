"""keras-effnet: EfficientNet B0-B7, Lite0-4 and EfficientNetV2 for Keras 3.

Quick start::

    import keras_effnet
    model = keras_effnet.EfficientNetB0(weights=None, classes=10)

The public names are imported on first use (PEP 562 module `__getattr__`), so
`import keras_effnet` and every command's `--help` run without TensorFlow
(issue 21); the first name used imports Keras quietly (`_quiet_import`).
"""

import importlib
import importlib.util
import sys

__version__ = "0.1.0"

_MODELS = (
    "EfficientNet",
    "EfficientNetB0",
    "EfficientNetB1",
    "EfficientNetB2",
    "EfficientNetB3",
    "EfficientNetB4",
    "EfficientNetB5",
    "EfficientNetB6",
    "EfficientNetB7",
    "EfficientNetLite0",
    "EfficientNetLite1",
    "EfficientNetLite2",
    "EfficientNetLite3",
    "EfficientNetLite4",
    "EfficientNetV2B0",
    "EfficientNetV2B1",
    "EfficientNetV2B2",
    "EfficientNetV2B3",
    "EfficientNetV2L",
    "EfficientNetV2M",
    "EfficientNetV2S",
    "get_model",
)
# Public name -> the submodule that defines it.
_PUBLIC = {
    **{name: "core.models" for name in _MODELS},
    "FEATURE_STRIDES": "core.features",
    "feature_extractor": "core.features",
    "build_efficientnet": "core.network",
    "Category": "prediction",
    "Prediction": "prediction",
    "predict": "prediction",
    "model_profile": "core.profile",
    "compound_coefficients": "core.scaling",
    "round_filters": "core.scaling",
    "round_repeats": "core.scaling",
    "VARIANTS": "core.variants",
    "get_variant": "core.variants",
}

__all__ = sorted(_PUBLIC)
# Submodules that moved into the model core (`core`) and the input path (`data`):
# `keras_effnet.core.layers` and the like still resolve as attributes.
_MOVED = {
    **{
        name: f"core.{name}"
        for name in (
            "variants",
            "scaling",
            "builder",
            "network",
            "models",
            "weights",
            "features",
            "profile",
            "graph",
            "checkpoints",
            "pretrained",
            "layers",
        )
    },
    "sources": "data.sources",
    "stream": "data.stream",
}


def __getattr__(name):
    # A public name, or a submodule not imported yet (`keras_effnet.core.layers`, `.export`: the
    # eager package made them all attributes, so code that relied on that keeps working).
    submodule = not name.startswith("_") and importlib.util.find_spec(f"keras_effnet.{name}")
    if name in _MOVED:
        importlib.import_module("keras_effnet._quiet_import").import_backend_quietly()
        return importlib.import_module(f"keras_effnet.{_MOVED[name]}")
    if name not in _PUBLIC and not submodule:
        raise AttributeError(f"module 'keras_effnet' has no attribute {name!r}")
    # By import_module: `from keras_effnet import _quiet_import` would come back here.
    importlib.import_module("keras_effnet._quiet_import").import_backend_quietly()
    if name not in _PUBLIC:
        return importlib.import_module(f"keras_effnet.{name}")
    value = getattr(importlib.import_module(f"keras_effnet.{_PUBLIC[name]}"), name)
    globals()[name] = value  # Later look-ups skip __getattr__.
    return value


def __dir__():
    return sorted(set(globals()) | set(_PUBLIC))


if "keras" in sys.modules:
    # Keras is already loaded (`import keras` comes first in isort's order): register our
    # layers now, so `keras.saving.load_model` after `import keras_effnet` finds them as it
    # always did. Without Keras loaded, nothing heavy is imported here.
    importlib.import_module("keras_effnet.core.layers")
