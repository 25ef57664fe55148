"""Model specs of the study: what to build, as JSON-friendly dicts.

A spec is one of
  * ``{"name": "b0"}`` ... ``{"name": "lite4"}``, ``{"name": "v2b0"}`` ...
    ``{"name": "v2l"}``: a named variant (`keras_effnet.get_model`);
  * ``{"name": "resnet50"}``: keras.applications ResNet50 (weights=None), the
    reference the paper compares against, behind an in-graph
    ``Rescaling(1/127.5, offset=-1)`` so that it takes the same 0..255 pixels;
  * ``{"name": "mobilenetv3large"}``, ``{"name": "mobilenetv3small"}``:
    keras.applications MobileNetV3 (weights=None, its own in-graph
    preprocessing of 0..255 pixels), the mobile reference;
  * ``{"phi": 1.0, "alpha": 1.2, "beta": 1.1, "gamma": 1.15,
    "base_resolution": 224, "lite": False}``: compound scaling from B0
    (`keras_effnet.EfficientNet`).

Specs are part of a study cell's identity (see `results.cell_id`), so they
hold only primitives.
"""

import math

import keras_effnet
from keras_effnet.core import builder, scaling, variants

REFERENCE_MODELS = ("resnet50", "mobilenetv3large", "mobilenetv3small")
# Native resolution of the references (keras.applications defaults).
_REFERENCE_RESOLUTION = {name: 224 for name in REFERENCE_MODELS}


def parse_model_name(name):
    """Returns the spec of a named model ("b0", "Lite0", "resnet50", ...)."""
    key = str(name).strip().lower()
    if key in REFERENCE_MODELS:
        return {"name": key}
    try:
        return {"name": variants.get_variant(key).name}
    except ValueError:
        raise ValueError(
            f"Unknown model name. Received: models entry {name!r}; expected one of "
            f"{sorted(variants.VARIANTS) + list(REFERENCE_MODELS)}."
        ) from None


def compound_spec(phi, alpha, beta, gamma, base_resolution, lite=False, label=None):
    """Returns the spec of `keras_effnet.EfficientNet(phi, alpha, beta, gamma, ...)`.

    Validates like `keras_effnet.core.scaling.compound_coefficients` (without the
    warning, which the caller's tolerance replaces). `label` names the model in
    tables and plots (default "phi<phi>").
    """
    scaling.compound_coefficients(phi, alpha, beta, gamma, warn=False)
    if not isinstance(base_resolution, int) or base_resolution < 32:
        raise ValueError(
            f"`base_resolution` must be an int >= 32. Received: base_resolution={base_resolution!r}"
        )
    return {
        "phi": float(phi),
        "alpha": float(alpha),
        "beta": float(beta),
        "gamma": float(gamma),
        "base_resolution": int(base_resolution),
        "lite": bool(lite),
        "label": label or f"phi{float(phi):g}",
    }


def is_compound(spec):
    return "phi" in spec


def label(spec):
    """Short human name: "b0", "resnet50", "phi1", "a1.20-b1.10-g1.15"."""
    return spec["label"] if is_compound(spec) else spec["name"]


def family(spec):
    """ "efficientnet", "efficientnet-lite", "efficientnetv2", "compound" or the reference name."""
    if is_compound(spec):
        return "compound-lite" if spec.get("lite") else "compound"
    if spec["name"] in REFERENCE_MODELS:
        return spec["name"]
    v = variants.get_variant(spec["name"])
    if v.baseline != "v1":
        return "efficientnetv2"
    return "efficientnet-lite" if v.lite else "efficientnet"


def scaling_of(spec):
    """(width, depth) multipliers of an EfficientNet spec; (None, None) otherwise."""
    if is_compound(spec):
        c = scaling.compound_coefficients(
            spec["phi"], spec["alpha"], spec["beta"], spec["gamma"], warn=False
        )
        return c.width, c.depth
    if spec["name"] in REFERENCE_MODELS:
        return None, None
    v = variants.get_variant(spec["name"])
    return v.width, v.depth


def plan_applies(spec):
    """Whether `spec` is an EfficientNet (its stem stride and stochastic depth follow the run)."""
    return is_compound(spec) or spec["name"] not in REFERENCE_MODELS


def plan(spec):
    """The `builder.Plan` of an EfficientNet spec (the network without building it)."""
    if not is_compound(spec) and spec["name"] in REFERENCE_MODELS:
        raise ValueError(f"{spec['name']!r} is not an EfficientNet. Received: spec={spec!r}")
    width, depth = scaling_of(spec)
    if is_compound(spec):
        return builder.build_plan(width, depth, lite=spec.get("lite", False))
    v = variants.get_variant(spec["name"])
    return builder.build_plan(width, depth, lite=v.lite, baseline=v.baseline)


def architecture_key(spec, resolution):
    """What the network at `resolution` is made of (for EfficientNet specs).

    Two (alpha, beta, gamma) can build the very same network: repeats are
    rounded up and channels to multiples of 8, so on B0's repeats every
    alpha in (1, 1.25] gives the same 23 blocks at phi=1. Equal keys mean
    equal models (same layers, shapes and parameters).
    """
    p = plan(spec)
    convs = tuple(
        (b.filters_in, b.filters_out, b.kernel_size, b.strides, b.expand_ratio, b.se_ratio, b.fused)
        for b in p.blocks
    )
    return p.stem_filters, p.head_filters, convs, p.activation, int(resolution)


def native_resolution(spec):
    """The input side the model was designed for."""
    if is_compound(spec):
        c = scaling.compound_coefficients(
            spec["phi"], spec["alpha"], spec["beta"], spec["gamma"], warn=False
        )
        return scaling.scaled_resolution(spec["base_resolution"], c.resolution)
    if spec["name"] in REFERENCE_MODELS:
        return _REFERENCE_RESOLUTION[spec["name"]]
    return variants.get_variant(spec["name"]).resolution


def resolve_resolution(spec, resolution=0, resolution_scale=1.0):
    """Input side of a study cell.

    Args:
        spec: model spec.
        resolution: > 0: this common side for every model; 0: the model's
            native resolution times `resolution_scale`.
        resolution_scale: factor on native resolutions (e.g. 0.25 keeps the
            compound scaling of resolution at a quarter of the cost per side).

    Returns:
        int side, at least 32 (the models' minimum).
    """
    if not isinstance(resolution, int) or resolution < 0 or 0 < resolution < 32:
        raise ValueError(
            f"`resolution` must be 0 (native) or an int >= 32. Received: resolution={resolution!r}"
        )
    if not (
        isinstance(resolution_scale, (int, float))
        and math.isfinite(resolution_scale)
        and resolution_scale > 0
    ):
        raise ValueError(
            f"`resolution_scale` must be a positive number. Received: resolution_scale={resolution_scale!r}"
        )
    if resolution:
        return resolution
    return max(32, int(round(native_resolution(spec) * resolution_scale)))


def build(spec, resolution, classes, stem_strides=2, drop_connect_rate=0.2):
    """Builds the Keras model of `spec` for (resolution, resolution, 3) inputs.

    `stem_strides` and `drop_connect_rate` apply to EfficientNets (the
    references keep their own architecture).
    """
    shape = (resolution, resolution, 3)
    own = dict(stem_strides=stem_strides, drop_connect_rate=drop_connect_rate)
    if is_compound(spec):
        return keras_effnet.EfficientNet(
            phi=spec["phi"],
            alpha=spec["alpha"],
            beta=spec["beta"],
            gamma=spec["gamma"],
            base_resolution=spec["base_resolution"],
            lite=spec.get("lite", False),
            weights=None,
            input_shape=shape,
            classes=classes,
            **own,
        )
    if spec["name"] in REFERENCE_MODELS:
        import keras  # Here: the study's flags and configs load without Keras (issue 21).

        if spec["name"].startswith("mobilenetv3"):
            make = keras.applications.MobileNetV3Large
            if spec["name"] == "mobilenetv3small":
                make = keras.applications.MobileNetV3Small
            return make(input_shape=shape, weights=None, classes=classes, name=spec["name"])

        inputs = keras.Input(shape, name="input_layer")
        # Same 0..255 input contract as our models; [-1, 1] into the network.
        x = keras.layers.Rescaling(1.0 / 127.5, offset=-1.0, name="rescaling")(inputs)
        return keras.applications.ResNet50(
            weights=None, input_tensor=x, classes=classes, name="resnet50"
        )
    return keras_effnet.get_model(
        spec["name"], weights=None, input_shape=shape, classes=classes, **own
    )
