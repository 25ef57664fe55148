"""The `augment` spec ("auto", "none", "crop,flip,..."), parsed without TensorFlow.

The training configuration validates it on construction, and the configuration
is imported by `keras-effnet train --help`, before TensorFlow may be imported;
`keras_effnet.data` applies it.
"""

from keras_effnet.errors import ConfigError

AUGMENTATIONS = ("crop", "shift", "flip", "randaugment", "mixup")


def parse_augment(augment):
    """Normalizes an augmentation spec to a tuple of names.

    Args:
        augment: None, "none", "auto", a comma-separated string such as
            "crop,flip,mixup", or a sequence of names from `AUGMENTATIONS`.

    Returns:
        ("auto",) for "auto", otherwise a tuple of names in canonical order.
    """
    if augment is None:
        return ()
    names = augment.split(",") if isinstance(augment, str) else list(augment)
    names = [str(n).strip().lower() for n in names if str(n).strip()]
    if names in (["none"], []):
        return ()
    if names == ["auto"]:
        return ("auto",)
    unknown = [n for n in names if n not in AUGMENTATIONS]
    if unknown:
        raise ConfigError(
            f'`augment` must be "auto", "none" or a comma list of {AUGMENTATIONS}. '
            f"Received: augment={augment!r}"
        )
    return tuple(n for n in AUGMENTATIONS if n in names)
