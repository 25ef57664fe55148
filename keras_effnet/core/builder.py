"""Turns (baseline, width, depth, switches) into the whole plan of a network.

`build_plan` is the one place that decides what an EfficientNet is made of:
stem and head widths, every block's arguments, activation, BatchNorm momentum
and preprocessing, including the Lite rules (tensorflow/tpu
`models/official/efficientnet/lite`). `network.build_efficientnet` builds a
plan; the study (`study.specs`) compares plans without building them.
"""

import dataclasses

from keras_effnet.core import variants
from keras_effnet.core.scaling import round_filters, round_repeats


@dataclasses.dataclass(frozen=True)
class BlockArgs:
    """Arguments of one block after scaling (see `layers.MBConv`, `layers.FusedMBConv`)."""

    name: str
    filters_in: int
    filters_out: int
    kernel_size: int
    strides: int
    expand_ratio: int
    se_ratio: float
    drop_rate: float
    fused: bool = False


@dataclasses.dataclass(frozen=True)
class Plan:
    """Everything `network.build_efficientnet` builds between preprocessing and classifier.

    Attributes:
        stem_filters: channels of the 3x3 stem conv.
        blocks: tuple of `BlockArgs`, in order.
        head_filters: channels of the 1x1 head conv (`top_conv`).
        activation: activation name of every block, stem and head.
        bn_momentum: BatchNormalization momentum.
        preprocessing: in-graph preprocessing (`variants.PREPROCESSING`).
        depthwise_name: suffix of MBConv's depthwise conv name.
    """

    stem_filters: int
    blocks: tuple
    head_filters: int
    activation: str
    bn_momentum: float
    preprocessing: str
    depthwise_name: str = "dwconv"
    stem_strides: int = 2

    def parameters(self, classes=1000, include_top=True, include_preprocessing=True) -> int:
        """Parameters of the built model (see `plan_parameters`)."""
        return plan_parameters(
            self.blocks,
            self.stem_filters,
            self.head_filters,
            classes,
            include_top,
            include_preprocessing,
            self.preprocessing,
        )


def scale_blocks(
    stages, width, depth, drop_connect_rate=0.2, lite=False, divisor=8, guard=True
) -> list[BlockArgs]:
    """Expands baseline stages into scaled blocks.

    Args:
        stages: sequence of `variants.StageArgs` (never mutated).
        width: width coefficient (channels via `round_filters`).
        depth: depth coefficient (repeats via `round_repeats`).
        drop_connect_rate: stochastic-depth rate of the last block; block b of
            N gets `drop_connect_rate * b / N`.
        lite: Lite switches: no squeeze-excite and the first and last stage
            keep their baseline repeats.
        divisor: channel rounding unit.
        guard: `round_filters`' 10 % guard (EfficientNet; not EfficientNetV2).

    Returns:
        A list of `BlockArgs`, named "block{stage}{letter}" like keras.applications.
    """
    if not 0 <= drop_connect_rate < 1:
        raise ValueError(
            f"`drop_connect_rate` must be in [0, 1). Received: drop_connect_rate={drop_connect_rate}"
        )
    last = len(stages) - 1
    repeats = [
        s.repeats if lite and i in (0, last) else round_repeats(s.repeats, depth)
        for i, s in enumerate(stages)
    ]
    total = float(sum(repeats))
    blocks = []
    for i, (stage, count) in enumerate(zip(stages, repeats)):
        filters_in = round_filters(stage.filters_in, width, divisor, guard)
        filters_out = round_filters(stage.filters_out, width, divisor, guard)
        for j in range(count):
            blocks.append(
                BlockArgs(
                    name=f"block{i + 1}{chr(j + 97)}",
                    filters_in=filters_in if j == 0 else filters_out,
                    filters_out=filters_out,
                    kernel_size=stage.kernel_size,
                    strides=stage.strides if j == 0 else 1,
                    expand_ratio=stage.expand_ratio,
                    se_ratio=0.0 if lite else stage.se_ratio,
                    drop_rate=drop_connect_rate * len(blocks) / total,
                    fused=stage.fused,
                )
            )
    return blocks


def build_plan(
    width, depth, drop_connect_rate=0.2, lite=False, baseline="v1", stem_strides=2
) -> Plan:
    """The plan of the network `baseline` scaled by (width, depth).

    Args:
        width: width coefficient (> 0).
        depth: depth coefficient (> 0).
        drop_connect_rate: stochastic-depth rate of the last block.
        lite: EfficientNet-Lite rules: no squeeze-excite, relu6, stem and head
            widths not scaled (the first block then takes the unscaled stem),
            first and last stage not repeated. Defined for the "v1" baseline.
        baseline: a `variants.Baseline` or its name ("v1", "v2-b", "v2-s",
            "v2-m", "v2-l").
        stem_strides: the stem conv's stride: 2 (the paper's: 32x downsampling
            in all) or 1 (16x: a 32 px input still ends on a 2x2 feature map;
            docs/training.md, "Small images"). Parameters are the same.

    Returns:
        A `Plan`.
    """
    if stem_strides not in (1, 2):
        raise ValueError(f"`stem_strides` must be 1 or 2. Received: stem_strides={stem_strides!r}")
    base = variants.get_baseline(baseline)
    if lite and base.name != "v1":
        raise ValueError(
            "The Lite rules are defined for EfficientNet (baseline 'v1') only. "
            f"Received: lite=True, baseline={base.name!r}"
        )
    blocks = scale_blocks(
        base.stages, width, depth, drop_connect_rate, lite=lite, guard=base.filter_guard
    )

    def stem_head(filters):
        return filters if lite else round_filters(filters, width, guard=base.filter_guard)

    stem = stem_head(base.stem_filters)
    if lite:
        # Lite keeps the stem at its baseline width whatever the width coefficient.
        blocks[0] = dataclasses.replace(blocks[0], filters_in=stem)
    return Plan(
        stem_filters=stem,
        blocks=tuple(blocks),
        head_filters=stem_head(base.head_filters),
        activation="relu6" if lite else "swish",
        bn_momentum=base.bn_momentum,
        preprocessing=base.preprocessing,
        depthwise_name=base.depthwise_name,
        stem_strides=stem_strides,
    )


def block_parameters(args) -> int:
    """Parameters of one block (expand, spatial conv, squeeze-excite, project, BatchNorms)."""
    expanded = args.filters_in * args.expand_ratio
    count = 0
    if args.fused:
        if args.expand_ratio != 1:
            count += args.kernel_size**2 * args.filters_in * expanded + 4 * expanded
            project_kernel = 1
        else:
            project_kernel = args.kernel_size
    else:
        if args.expand_ratio != 1:
            count += args.filters_in * expanded + 4 * expanded
        count += args.kernel_size**2 * expanded + 4 * expanded
        project_kernel = 1
    if 0 < args.se_ratio <= 1:
        squeezed = max(1, int(args.filters_in * args.se_ratio))
        count += expanded * squeezed + squeezed + squeezed * expanded + expanded
    return count + project_kernel**2 * expanded * args.filters_out + 4 * args.filters_out


# Weights of the in-graph preprocessing: the adaptable Normalization's mean
# (3), variance (3) and count (1); the constant forms have none.
PREPROCESSING_PARAMETERS = {"normalization": 7, "imagenet": 0, "symmetric": 0}


def plan_parameters(
    blocks,
    stem_filters,
    head_filters,
    classes=1000,
    include_top=True,
    include_preprocessing=True,
    preprocessing="normalization",
) -> int:
    """Parameters of the network a plan describes, without building it.

    Counts what `network.build_efficientnet` builds (BatchNorm's 4 per channel,
    the in-graph preprocessing's weights), so a model too large to build can be
    refused up front.
    """
    count = 27 * stem_filters + 4 * stem_filters
    count += sum(block_parameters(b) for b in blocks)
    count += blocks[-1].filters_out * head_filters + 4 * head_filters
    if include_top:
        count += head_filters * classes + classes
    return count + (PREPROCESSING_PARAMETERS[preprocessing] if include_preprocessing else 0)
