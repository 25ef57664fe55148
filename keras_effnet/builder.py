"""Turns (stages, width, depth, switches) into a list of per-block arguments."""

import dataclasses

from keras_effnet.scaling import round_filters, round_repeats


@dataclasses.dataclass(frozen=True)
class BlockArgs:
    """Arguments of one MBConv block after scaling (see `layers.MBConv`)."""

    name: str
    filters_in: int
    filters_out: int
    kernel_size: int
    strides: int
    expand_ratio: int
    se_ratio: float
    drop_rate: float


def scale_blocks(stages, width, depth, drop_connect_rate=0.2, lite=False, divisor=8):
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
        filters_in = round_filters(stage.filters_in, width, divisor)
        filters_out = round_filters(stage.filters_out, width, divisor)
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
                )
            )
    return blocks


def block_parameters(args):
    """Parameters of one MBConv block (expand, depthwise, squeeze-excite, project, BatchNorms)."""
    expanded = args.filters_in * args.expand_ratio
    count = 0
    if args.expand_ratio != 1:
        count += args.filters_in * expanded + 4 * expanded
    count += args.kernel_size ** 2 * expanded + 4 * expanded
    if 0 < args.se_ratio <= 1:
        squeezed = max(1, int(args.filters_in * args.se_ratio))
        count += expanded * squeezed + squeezed + squeezed * expanded + expanded
    return count + expanded * args.filters_out + 4 * args.filters_out


def plan_parameters(blocks, stem_filters, head_filters, classes=1000, include_top=True,
                    include_preprocessing=True):
    """Parameters of the network a plan describes, without building it.

    Counts what `models.build_efficientnet` builds (BatchNorm's 4 per channel,
    the in-graph Normalization's 7), so a model too large to build can be
    refused up front.
    """
    count = 27 * stem_filters + 4 * stem_filters
    count += sum(block_parameters(b) for b in blocks)
    count += blocks[-1].filters_out * head_filters + 4 * head_filters
    if include_top:
        count += head_filters * classes + classes
    return count + (7 if include_preprocessing else 0)
