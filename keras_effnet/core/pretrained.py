"""Where pretrained weights come from, and the input normalization each source expects.

`weights=` of every constructor is resolved here into one `WeightSource`:

* ``None``: random initialization.
* ``"imagenet"``: keras.applications' official files for B0-B7 and
  EfficientNetV2 (`keras_effnet.core.weights`), and timm's ports of the official
  TensorFlow Lite checkpoints (``tf_efficientnet_lite<N>.in1k``) for Lite0-4,
  which keras.applications does not have.
* ``"timm:<architecture>[.<tag>]"``: a checkpoint of timm's ``tf_`` ports on
  the Hugging Face hub (``timm/<architecture>.<tag>/model.safetensors``),
  downloaded once into the Keras cache (``~/.keras/models/timm/``).
* a path: a ``.safetensors`` file in timm's format, an official-format legacy
  ``.h5``, or a ``.weights.h5`` saved from a keras-effnet model.

timm's own PyTorch-trained architectures (``efficientnet_b0`` and the like)
pad symmetrically, unlike the TensorFlow "same" padding of these models and
of timm's ``tf_`` ports, so they are refused rather than loaded into a graph
that pads differently (docs/models.md "Pretrained weights").

Each timm tag records the normalization it was trained with (timm's
``pretrained_cfg``: mean, std, input size, crop fraction, interpolation); the
figures below were read from timm 1.0.31. A model built with
``include_preprocessing=True`` applies its source's normalization in-graph.
"""

import dataclasses
import json
import os
import warnings

import keras

from keras_effnet.core import variants
from keras_effnet.core import weights as weights_lib

HF_URL = "https://huggingface.co/timm/{name}/resolve/main/model.safetensors"
CACHE_SUBDIR = os.path.join("models", "timm")
TIMM_PREFIX = "timm:"

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
INCEPTION_MEAN = (0.5, 0.5, 0.5)
INCEPTION_STD = (0.5, 0.5, 0.5)


@dataclasses.dataclass(frozen=True)
class InputNormalization:
    """Pixels in [0, 1] are mapped to ``(x - mean) / std`` per RGB channel."""

    mean: tuple
    std: tuple

    def to_json(self) -> dict[str, list[float]]:
        return {"mean": list(self.mean), "std": list(self.std)}


IMAGENET = InputNormalization(IMAGENET_MEAN, IMAGENET_STD)
INCEPTION = InputNormalization(INCEPTION_MEAN, INCEPTION_STD)


@dataclasses.dataclass(frozen=True)
class TimmTag:
    """One of timm's checkpoints of a ``tf_`` EfficientNet port.

    Attributes:
        architecture: timm's architecture name ("tf_efficientnet_lite0").
        tag: the checkpoint's tag ("in1k", "ns_jft_in1k").
        variant: our variant name ("lite0").
        normalization: the input normalization it was trained with.
        train_size: the resolution it was trained at.
        eval_size: timm's evaluation resolution.
        crop_pct: timm's evaluation centre-crop fraction.
        interpolation: timm's evaluation resize ("bicubic", "bilinear").
        num_classes: classifier outputs (21843 for the ImageNet-21k tags).
    """

    architecture: str
    tag: str
    variant: str
    normalization: InputNormalization
    train_size: int
    eval_size: int
    crop_pct: float
    interpolation: str
    num_classes: int = 1000

    @property
    def name(self) -> str:
        return f"{self.architecture}.{self.tag}"

    @property
    def url(self) -> str:
        return HF_URL.format(name=self.name)

    @property
    def file_name(self) -> str:
        return f"{self.name}.safetensors"


# Our variant -> timm's tf_ architecture.
TIMM_ARCHITECTURES = {
    **{f"b{i}": f"tf_efficientnet_b{i}" for i in range(8)},
    **{f"lite{i}": f"tf_efficientnet_lite{i}" for i in range(5)},
    **{f"v2b{i}": f"tf_efficientnetv2_b{i}" for i in range(4)},
    **{f"v2{s}": f"tf_efficientnetv2_{s}" for s in "sml"},
}

_B_CROP = {0: 0.875, 1: 0.882, 2: 0.89, 3: 0.904, 4: 0.922, 5: 0.934, 6: 0.942, 7: 0.949}
_B_TAGS = {
    **{i: ("ns_jft_in1k", "aa_in1k", "ap_in1k", "in1k") for i in range(5)},
    5: ("ns_jft_in1k", "aa_in1k", "ap_in1k", "in1k", "ra_in1k"),
    6: ("ns_jft_in1k", "aa_in1k", "ap_in1k"),
    7: ("ns_jft_in1k", "aa_in1k", "ap_in1k", "ra_in1k"),
}
# (timm eval size, crop, interpolation) of the Lite ports; they were trained
# at the variant's resolution (tensorflow/tpu efficientnet_lite_builder).
_LITE = {
    0: (224, 0.875, "bicubic"),
    1: (240, 0.882, "bicubic"),
    2: (260, 0.89, "bicubic"),
    3: (300, 0.904, "bilinear"),
    4: (380, 0.92, "bilinear"),
}
# (train size, eval size, crop) of the V2 ports.
_V2 = {
    "b0": (192, 224, 0.875),
    "b1": (192, 240, 0.882),
    "b2": (208, 260, 0.89),
    "b3": (240, 300, 0.904),
    "s": (300, 384, 1.0),
    "m": (384, 480, 1.0),
    "l": (384, 480, 1.0),
}


def _timm_tags():
    tags = []
    for i, names in _B_TAGS.items():
        size = variants.get_variant(f"b{i}").resolution
        for tag in names:
            norm = INCEPTION if tag.startswith("ap_") else IMAGENET
            tags.append(
                TimmTag(
                    f"tf_efficientnet_b{i}", tag, f"b{i}", norm, size, size, _B_CROP[i], "bicubic"
                )
            )
    for i, (eval_size, crop, interp) in _LITE.items():
        size = variants.get_variant(f"lite{i}").resolution
        tags.append(
            TimmTag(
                f"tf_efficientnet_lite{i}",
                "in1k",
                f"lite{i}",
                INCEPTION,
                size,
                eval_size,
                crop,
                interp,
            )
        )
    for key, (train, evaluate, crop) in _V2.items():
        arch = f"tf_efficientnetv2_{key}"
        if key.startswith("b"):
            names = {"in1k": (IMAGENET, 1000, crop)}
            if key == "b3":
                names = {
                    "in21k_ft_in1k": (INCEPTION, 1000, 0.9),
                    "in1k": (IMAGENET, 1000, crop),
                    "in21k": (INCEPTION, 21843, crop),
                }
        else:
            names = {
                "in21k_ft_in1k": (INCEPTION, 1000, crop),
                "in1k": (INCEPTION, 1000, crop),
                "in21k": (INCEPTION, 21843, crop),
            }
        for tag, (norm, classes, tag_crop) in names.items():
            tags.append(
                TimmTag(arch, tag, f"v2{key}", norm, train, evaluate, tag_crop, "bicubic", classes)
            )
    return {t.name: t for t in tags}


TIMM_TAGS = _timm_tags()
# timm's default tag of each architecture is the first listed above.
DEFAULT_TAGS = {}
for _tag in TIMM_TAGS.values():
    DEFAULT_TAGS.setdefault(_tag.architecture, _tag)
# weights="imagenet" for the Lite variants (keras.applications has none).
IMAGENET_TIMM_TAGS = {f"lite{i}": f"tf_efficientnet_lite{i}.in1k" for i in range(5)}


@dataclasses.dataclass(frozen=True)
class WeightSource:
    """A resolved `weights=` argument.

    Attributes:
        kind: "keras_applications" (official `.h5`, downloaded), "timm"
            (a hub checkpoint, downloaded), "safetensors" (a local file in
            timm's format), "h5" (a local legacy `.h5`) or "weights_h5" (a
            keras-effnet `.weights.h5`).
        argument: the `weights=` value as given.
        path: the local file (None until a download resolves it).
        timm_tag: the `TimmTag` of a hub checkpoint.
    """

    kind: str
    argument: str
    path: str = None
    timm_tag: TimmTag = None


def parse_timm_name(text) -> TimmTag:
    """'tf_efficientnet_b0.ns_jft_in1k' (or an architecture alone) -> `TimmTag`."""
    if text in TIMM_TAGS:
        return TIMM_TAGS[text]
    architecture = text.split(".")[0]
    if "." not in text and architecture in DEFAULT_TAGS:
        return DEFAULT_TAGS[architecture]
    if architecture in DEFAULT_TAGS:
        known = sorted(t.split(".", 1)[1] for t in TIMM_TAGS if t.startswith(architecture + "."))
        raise ValueError(
            f"Unknown timm tag {text!r}; {architecture} has the tags {', '.join(known)}. "
            f"Received: weights='{TIMM_PREFIX}{text}'"
        )
    if architecture.startswith("efficientnet"):
        _refuse_symmetric(architecture, f"{TIMM_PREFIX}{text}")
    raise ValueError(
        f"Unknown timm architecture {architecture!r}; supported: "
        f"{', '.join(sorted(DEFAULT_TAGS))}. Received: weights='{TIMM_PREFIX}{text}'"
    )


def _refuse_symmetric(architecture, argument):
    twin = f"tf_{architecture}"
    hint = f" Use its tf_ port, e.g. 'timm:{twin}'." if twin in DEFAULT_TAGS else ""
    raise ValueError(
        f"timm's {architecture!r} weights were trained with symmetric padding; these models pad "
        f"like TensorFlow ('same', as timm's tf_ ports do), so loading them would silently "
        f"change every output.{hint} Received: weights={argument!r}"
    )


def resolve(weights, weights_name, include_top=True, classes=1000) -> WeightSource | None:
    """Validates `weights` for the variant `weights_name` and returns a `WeightSource`.

    Nothing is downloaded or read here; `fetch` does that.
    """
    if weights is None:
        return None
    if isinstance(weights, os.PathLike):
        weights = os.fspath(weights)
    if not isinstance(weights, str):
        raise ValueError(
            '`weights` must be None, "imagenet", "timm:<architecture>.<tag>" or a file path. '
            f"Received: weights={weights!r}"
        )
    if weights == "imagenet" and weights_name in IMAGENET_TIMM_TAGS:
        return _timm_source(
            weights, TIMM_TAGS[IMAGENET_TIMM_TAGS[weights_name]], weights_name, include_top, classes
        )
    if weights == "imagenet":
        if weights_name not in weights_lib.IMAGENET_WEIGHTS_HASHES:
            raise ValueError(
                'weights="imagenet" exists for the named variants (B0-B7, Lite0-4, V2), not '
                "for custom scaling; pass a file path instead. "
                f"Received: weights={weights!r}"
            )
        if include_top and classes != 1000:
            raise ValueError(
                'With weights="imagenet" and include_top=True, `classes` must be 1000. '
                f"Received: classes={classes}"
            )
        return WeightSource("keras_applications", weights)
    if weights.startswith(TIMM_PREFIX):
        tag = parse_timm_name(weights[len(TIMM_PREFIX) :])
        return _timm_source(weights, tag, weights_name, include_top, classes)
    if not os.path.isfile(weights):
        raise ValueError(f"Weights file not found. Received: weights={weights!r}")
    if weights.endswith(".safetensors"):
        return WeightSource("safetensors", weights, path=weights)
    if weights.endswith(".weights.h5"):
        return WeightSource("weights_h5", weights, path=weights)
    if weights.endswith((".h5", ".hdf5")):
        return WeightSource("h5", weights, path=weights)
    raise ValueError(
        "A weights file must be a timm-format `.safetensors`, an official-format `.h5` or a "
        f"keras-effnet `.weights.h5`. Received: weights={weights!r}"
    )


def _timm_source(weights, tag, weights_name, include_top, classes):
    if weights_name is None:
        raise ValueError(
            f"{tag.name} holds {variants.get_variant(tag.variant).label} weights; a custom-scaled "
            f"model cannot take them. Received: weights={weights!r}"
        )
    if tag.variant != weights_name:
        ours = variants.get_variant(weights_name).label
        raise ValueError(
            f"{tag.name} is a checkpoint of {variants.get_variant(tag.variant).label}, not of "
            f"{ours}. Received: weights={weights!r}"
        )
    if include_top and classes != tag.num_classes:
        raise ValueError(
            f"With weights={weights!r} and include_top=True, `classes` must be "
            f"{tag.num_classes} (the checkpoint's classifier). For a new classifier, build with "
            f"include_top=False and add your own head (or fine-tune with `keras-effnet train` "
            f"--weights). Received: classes={classes}"
        )
    return WeightSource("timm", weights, timm_tag=tag)


def cached_path(tag) -> str:
    """Where a hub checkpoint lives once downloaded (or where to place it by hand)."""
    return os.path.join(_keras_home(), CACHE_SUBDIR, tag.file_name)


def _keras_home():
    if "KERAS_HOME" in os.environ:
        return os.environ["KERAS_HOME"]
    base = os.path.expanduser("~")
    if not os.access(base, os.W_OK):
        base = "/tmp"
    return os.path.join(base, ".keras")


def fetch(source) -> WeightSource:
    """Returns `source` with `path` set, downloading a hub checkpoint once."""
    if source.kind != "timm" or source.path:
        return source
    tag = source.timm_tag
    target = cached_path(tag)
    if not os.path.isfile(target):
        try:
            # No hash is published for timm's files; a corrupt download fails
            # to parse and names the file (`checkpoints.read_safetensors`).
            keras.utils.get_file(
                tag.file_name, tag.url, cache_subdir=CACHE_SUBDIR, cache_dir=_keras_home()
            )
        except Exception as err:  # get_file raises bare Exceptions for URL errors.
            reason = str(err).splitlines()[0][:160] if str(err) else type(err).__name__
            raise ValueError(
                f"Could not download {tag.file_name} from {tag.url} ({reason}). Offline? "
                f"Download it elsewhere and place it at {target}. "
                f"Received: weights={source.argument!r}"
            ) from None
    return dataclasses.replace(source, path=target)


def local_file_info(path, metadata, weights_name) -> tuple[str, InputNormalization]:
    """The architecture and input normalization of a local timm-format file.

    Read, in order, from the file's own metadata (files written by
    `checkpoints.save_timm_safetensors` carry "architecture", "mean" and
    "std"), from a timm `config.json` beside it (the hub's layout), else the
    variant's default timm tag is assumed, with a warning naming it. A file
    of one of timm's symmetric-padding architectures is refused.

    Returns:
        (architecture or "", `InputNormalization`).
    """
    info = dict(metadata or {})
    config_path = os.path.join(os.path.dirname(os.path.abspath(path)), "config.json")
    if "mean" not in info and os.path.isfile(config_path):
        try:
            with open(config_path) as f:
                config = json.load(f)
            cfg = config.get("pretrained_cfg", config)
            info.setdefault("architecture", config.get("architecture", ""))
            info["mean"], info["std"] = json.dumps(cfg["mean"]), json.dumps(cfg["std"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            pass
    architecture = info.get("architecture") or ""
    if architecture and not architecture.startswith("tf_"):
        _refuse_symmetric(architecture, path)
    expected = TIMM_ARCHITECTURES.get(weights_name)
    if architecture and expected and architecture != expected:
        raise ValueError(
            f"{path!r} holds {architecture} weights; this model is {expected}'s architecture. "
            f"Received: weights={path!r}"
        )
    if "mean" in info and "std" in info:
        try:
            mean, std = tuple(json.loads(info["mean"])), tuple(json.loads(info["std"]))
            if len(mean) == len(std) == 3 and min(std) > 0:
                return architecture, InputNormalization(mean, std)
        except (ValueError, TypeError):
            pass
        raise ValueError(
            f"{path!r} records an unusable input normalization (mean {info['mean']!r}, std "
            f"{info['std']!r}). Received: weights={path!r}"
        )
    default = DEFAULT_TAGS.get(expected)
    if default is None:
        return architecture, IMAGENET
    warnings.warn(
        f"{path!r} records no input normalization (no metadata, no config.json beside it); "
        f"assuming {default.name}'s mean {default.normalization.mean} and std "
        f"{default.normalization.std}.",
        stacklevel=5,  # the constructor's caller
    )
    return architecture, default.normalization
