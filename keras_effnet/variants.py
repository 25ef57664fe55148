"""The EfficientNet family in one table, and the baseline (B0) stage spec.

B0-B7 are the official coefficients (width, depth, resolution, dropout) of
https://arxiv.org/abs/1905.11946 as shipped in keras.applications. Lite0-4 are
the mobile variants of tensorflow/tpu `models/official/efficientnet/lite`: the
same builder with squeeze-excite removed, relu6, stem/head widths not scaled
and the first and last stage not repeated.
"""

import dataclasses


@dataclasses.dataclass(frozen=True)
class StageArgs:
    """One stage of MBConv blocks in the baseline network.

    Attributes:
        kernel_size: depthwise kernel size.
        repeats: number of blocks in the stage (before depth scaling).
        filters_in: input channels of the first block (before width scaling).
        filters_out: output channels of every block (before width scaling).
        expand_ratio: inverted-bottleneck expansion factor.
        strides: stride of the first block (later blocks use 1).
        se_ratio: squeeze-excite ratio relative to `filters_in` (0 = no SE).
    """

    kernel_size: int
    repeats: int
    filters_in: int
    filters_out: int
    expand_ratio: int
    strides: int
    se_ratio: float = 0.25


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


@dataclasses.dataclass(frozen=True)
class Variant:
    """A named member of the family.

    Attributes:
        name: short name ("b0" ... "b7", "lite0" ... "lite4").
        width: width coefficient.
        depth: depth coefficient.
        resolution: native input resolution.
        dropout: dropout rate before the classifier.
        lite: mobile variant (no SE, relu6, fixed stem/head, first/last stage
            not repeated).
    """

    name: str
    width: float
    depth: float
    resolution: int
    dropout: float
    lite: bool = False

    @property
    def model_name(self):
        return f"efficientnet{self.name}" if not self.lite else f"efficientnet_{self.name}"

    @property
    def activation(self):
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
    )
}


def get_variant(name):
    """Looks up a variant by name ("b0", "B3", "efficientnetb3", "lite0", ...)."""
    key = str(name).lower().replace("-", "").replace("_", "")
    if key.startswith("efficientnet"):
        key = key[len("efficientnet"):]
    if key not in VARIANTS:
        raise ValueError(
            f"Unknown EfficientNet variant. Received: name={name!r}; "
            f"expected one of {sorted(VARIANTS)}."
        )
    return VARIANTS[key]
