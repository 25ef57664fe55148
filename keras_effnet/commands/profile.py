"""Prints parameters and FLOPs (multiply-adds) of every variant at its native resolution.

keras-effnet profile                   # B0-B7 and Lite0-4
keras-effnet profile --models=b0,lite0 --resolution=128
"""

from absl import flags

from keras_effnet import commands

_MODELS = flags.DEFINE_list(
    "models",
    [
        "b0",
        "b1",
        "b2",
        "b3",
        "b4",
        "b5",
        "b6",
        "b7",
        "lite0",
        "lite1",
        "lite2",
        "lite3",
        "lite4",
        "v2b0",
        "v2b1",
        "v2b2",
        "v2b3",
        "v2s",
        "v2m",
        "v2l",
    ],
    "Variants to profile.",
)
_RESOLUTION = flags.DEFINE_integer(
    "resolution", None, "Input side (default: each variant's native).", lower_bound=32
)
_CLASSES = flags.DEFINE_integer("classes", 1000, "Classifier size.", lower_bound=1)


def main(argv):
    del argv
    from keras_effnet.cli import run_main

    run_main(commands.prog(), _profile)


def _profile():
    import keras_effnet

    variants = [keras_effnet.get_variant(name) for name in _MODELS.value]  # all named first
    print(f"{'model':<8}{'res':>5}{'params':>14}{'GMACs':>9}{'GFLOPs':>9}")
    for name, variant in zip(_MODELS.value, variants):
        res = _RESOLUTION.value or variant.resolution
        model = keras_effnet.get_model(name, input_shape=(res, res, 3), classes=_CLASSES.value)
        p = keras_effnet.model_profile(model)
        print(
            f"{variant.name:<8}{res:>5}{p['params']:>14,}{p['macs'] / 1e9:>9.3f}{p['flops'] / 1e9:>9.3f}",
            flush=True,
        )
