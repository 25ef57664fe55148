"""The EfficientNet family in one table, and the baseline stage specs it scales.

B0-B7 are the official coefficients (width, depth, resolution, dropout) of
https://arxiv.org/abs/1905.11946 as shipped in keras.applications. Lite0-4 are
the mobile variants of tensorflow/tpu `models/official/efficientnet/lite`: the
same builder with squeeze-excite removed, relu6, stem/head widths not scaled
and the first and last stage not repeated. EfficientNetV2 B0-B3, S, M and L
(https://arxiv.org/abs/2104.00298) are rows of the same table on their own
baselines: B0-B3 scale the V2-B0 stages like B0-B7 scale B0, while S, M and L
are separately designed stage specs at width = depth = 1.
"""

import dataclasses


@dataclasses.dataclass(frozen=True)
class StageArgs:
    """One stage of blocks in a baseline network.

    Attributes:
        kernel_size: kernel size of the spatial conv (depthwise, or the fused
            k x k conv).
        repeats: number of blocks in the stage (before depth scaling).
        filters_in: input channels of the first block (before width scaling).
        filters_out: output channels of every block (before width scaling).
        expand_ratio: inverted-bottleneck expansion factor.
        strides: stride of the first block (later blocks use 1).
        se_ratio: squeeze-excite ratio relative to `filters_in` (0 = no SE).
        fused: Fused-MBConv blocks (EfficientNetV2) instead of MBConv.
    """

    kernel_size: int
    repeats: int
    filters_in: int
    filters_out: int
    expand_ratio: int
    strides: int
    se_ratio: float = 0.25
    fused: bool = False


B0_STAGES = (
    StageArgs(3, 1, 32, 16, 1, 1),
    StageArgs(3, 2, 16, 24, 6, 2),
    StageArgs(5, 2, 24, 40, 6, 2),
    StageArgs(3, 3, 40, 80, 6, 2),
    StageArgs(5, 3, 80, 112, 6, 1),
    StageArgs(5, 4, 112, 192, 6, 2),
    StageArgs(3, 1, 192, 320, 6, 1),
)
STEM_FILTERS = 32
HEAD_FILTERS = 1280

# EfficientNetV2 stage specs as in keras.applications (tensorflow/automl
# `efficientnetv2/effnetv2_configs.py`); V2-S is table 4 of the paper.
V2_B0_STAGES = (
    StageArgs(3, 1, 32, 16, 1, 1, 0.0, fused=True),
    StageArgs(3, 2, 16, 32, 4, 2, 0.0, fused=True),
    StageArgs(3, 2, 32, 48, 4, 2, 0.0, fused=True),
    StageArgs(3, 3, 48, 96, 4, 2, 0.25),
    StageArgs(3, 5, 96, 112, 6, 1, 0.25),
    StageArgs(3, 8, 112, 192, 6, 2, 0.25),
)
V2_S_STAGES = (
    StageArgs(3, 2, 24, 24, 1, 1, 0.0, fused=True),
    StageArgs(3, 4, 24, 48, 4, 2, 0.0, fused=True),
    StageArgs(3, 4, 48, 64, 4, 2, 0.0, fused=True),
    StageArgs(3, 6, 64, 128, 4, 2, 0.25),
    StageArgs(3, 9, 128, 160, 6, 1, 0.25),
    StageArgs(3, 15, 160, 256, 6, 2, 0.25),
)
V2_M_STAGES = (
    StageArgs(3, 3, 24, 24, 1, 1, 0.0, fused=True),
    StageArgs(3, 5, 24, 48, 4, 2, 0.0, fused=True),
    StageArgs(3, 5, 48, 80, 4, 2, 0.0, fused=True),
    StageArgs(3, 7, 80, 160, 4, 2, 0.25),
    StageArgs(3, 14, 160, 176, 6, 1, 0.25),
    StageArgs(3, 18, 176, 304, 6, 2, 0.25),
    StageArgs(3, 5, 304, 512, 6, 1, 0.25),
)
V2_L_STAGES = (
    StageArgs(3, 4, 32, 32, 1, 1, 0.0, fused=True),
    StageArgs(3, 7, 32, 64, 4, 2, 0.0, fused=True),
    StageArgs(3, 7, 64, 96, 4, 2, 0.0, fused=True),
    StageArgs(3, 10, 96, 192, 4, 2, 0.25),
    StageArgs(3, 19, 192, 224, 6, 1, 0.25),
    StageArgs(3, 25, 224, 384, 6, 2, 0.25),
    StageArgs(3, 7, 384, 640, 6, 1, 0.25),
)

# In-graph preprocessing of [0, 255] pixels (see `models` and docs/models.md
# "EfficientNetV2"): "normalization": Rescaling(1/255) + a Normalization whose
# statistics are weights (EfficientNet); "imagenet": Rescaling(1/255) +
# constant ImageNet mean/std (EfficientNetV2 B0-B3); "symmetric": x / 128 - 1
# (EfficientNetV2 S/M/L).
PREPROCESSING = ("normalization", "imagenet", "symmetric")


@dataclasses.dataclass(frozen=True)
class Baseline:
    """The unscaled network a group of variants scales.

    Attributes:
        name: key in `BASELINES`.
        stages: the stage spec (`StageArgs`).
        stem_filters: stem channels before width scaling.
        head_filters: channels of the 1x1 head conv before width scaling.
        bn_momentum: BatchNormalization momentum.
        filter_guard: `round_filters` never drops more than 10 % below the
            exact width (EfficientNet; EfficientNetV2 does not guard).
        preprocessing: one of `PREPROCESSING`.
        depthwise_name: suffix of MBConv's depthwise conv in the reference
            weight files ("dwconv", "dwconv2").
    """

    name: str
    stages: tuple
    stem_filters: int
    head_filters: int
    bn_momentum: float
    filter_guard: bool
    preprocessing: str
    depthwise_name: str


def _v2(name, stages):
    return Baseline(
        name,
        stages,
        stages[0].filters_in,
        HEAD_FILTERS,
        0.9,
        False,
        "imagenet" if name == "v2-b" else "symmetric",
        "dwconv2",
    )


BASELINES = {
    b.name: b
    for b in (
        Baseline(
            "v1", B0_STAGES, STEM_FILTERS, HEAD_FILTERS, 0.99, True, "normalization", "dwconv"
        ),
        _v2("v2-b", V2_B0_STAGES),
        _v2("v2-s", V2_S_STAGES),
        _v2("v2-m", V2_M_STAGES),
        _v2("v2-l", V2_L_STAGES),
    )
}


def get_baseline(baseline) -> Baseline:
    """A `Baseline` given itself or its name ("v1", "v2-b", "v2-s", "v2-m", "v2-l")."""
    if isinstance(baseline, Baseline):
        return baseline
    if baseline not in BASELINES:
        raise ValueError(
            f"Unknown baseline. Received: baseline={baseline!r}; "
            f"expected one of {sorted(BASELINES)}."
        )
    return BASELINES[baseline]


@dataclasses.dataclass(frozen=True)
class Variant:
    """A named member of the family.

    Attributes:
        name: short name ("b0" ... "b7", "lite0" ... "lite4", "v2b0" ... "v2b3",
            "v2s", "v2m", "v2l").
        width: width coefficient.
        depth: depth coefficient.
        resolution: native input resolution.
        dropout: dropout rate before the classifier.
        lite: mobile variant (no SE, relu6, fixed stem/head, first/last stage
            not repeated).
        baseline: key of the scaled baseline in `BASELINES`.
    """

    name: str
    width: float
    depth: float
    resolution: int
    dropout: float
    lite: bool = False
    baseline: str = "v1"

    @property
    def model_name(self) -> str:
        """The keras.applications model name (it also names the weight files)."""
        if self.baseline != "v1":
            return f"efficientnetv2-{self.name[2:]}"
        return f"efficientnet{self.name}" if not self.lite else f"efficientnet_{self.name}"

    @property
    def label(self) -> str:
        """Human name: "EfficientNet-B0", "EfficientNet-Lite0", "EfficientNetV2-S"."""
        if self.baseline != "v1":
            return f"EfficientNetV2-{self.name[2:].upper()}"
        return f"EfficientNet-{self.name.capitalize() if self.lite else self.name.upper()}"

    @property
    def constructor_name(self) -> str:
        """Name of the public constructor: "EfficientNetB0", "EfficientNetV2S", ..."""
        return self.label.replace("-", "")

    @property
    def activation(self) -> str:
        return "relu6" if self.lite else "swish"


VARIANTS = {
    v.name: v
    for v in (
        Variant("b0", 1.0, 1.0, 224, 0.2),
        Variant("b1", 1.0, 1.1, 240, 0.2),
        Variant("b2", 1.1, 1.2, 260, 0.3),
        Variant("b3", 1.2, 1.4, 300, 0.3),
        Variant("b4", 1.4, 1.8, 380, 0.4),
        Variant("b5", 1.6, 2.2, 456, 0.4),
        Variant("b6", 1.8, 2.6, 528, 0.5),
        Variant("b7", 2.0, 3.1, 600, 0.5),
        Variant("lite0", 1.0, 1.0, 224, 0.2, lite=True),
        Variant("lite1", 1.0, 1.1, 240, 0.2, lite=True),
        Variant("lite2", 1.1, 1.2, 260, 0.3, lite=True),
        Variant("lite3", 1.2, 1.4, 280, 0.3, lite=True),
        Variant("lite4", 1.4, 1.8, 300, 0.3, lite=True),
        # keras.applications builds every V2 variant with dropout 0.2.
        Variant("v2b0", 1.0, 1.0, 224, 0.2, baseline="v2-b"),
        Variant("v2b1", 1.0, 1.1, 240, 0.2, baseline="v2-b"),
        Variant("v2b2", 1.1, 1.2, 260, 0.2, baseline="v2-b"),
        Variant("v2b3", 1.2, 1.4, 300, 0.2, baseline="v2-b"),
        Variant("v2s", 1.0, 1.0, 384, 0.2, baseline="v2-s"),
        Variant("v2m", 1.0, 1.0, 480, 0.2, baseline="v2-m"),
        Variant("v2l", 1.0, 1.0, 480, 0.2, baseline="v2-l"),
    )
}


def get_variant(name) -> Variant:
    """Looks up a variant by name ("b0", "B3", "efficientnetb3", "lite0", "v2s",
    "EfficientNetV2B0", "efficientnetv2-s", ...)."""
    key = str(name).lower().replace("-", "").replace("_", "")
    if key.startswith("efficientnet"):
        key = key[len("efficientnet") :]
    if key not in VARIANTS:
        raise ValueError(
            f"Unknown EfficientNet variant. Received: name={name!r}; "
            f"expected one of {sorted(VARIANTS)}."
        )
    return VARIANTS[key]
