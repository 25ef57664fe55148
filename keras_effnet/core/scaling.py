"""Compound-scaling math (pure functions, no Keras).

EfficientNet scales a baseline network with one coefficient phi:
depth d = alpha**phi, width w = beta**phi, resolution r = gamma**phi, where the
grid search at phi=1 keeps alpha * beta**2 * gamma**2 close to 2 so that FLOPs
grow by about 2**phi (https://arxiv.org/abs/1905.11946, section 3.3).
"""

import dataclasses
import math
import warnings

# FLOPs constraint of the paper: alpha * beta^2 * gamma^2 ~= 2.
FLOPS_TARGET = 2.0
# Beyond this relative deviation from FLOPS_TARGET a warning is issued.
FLOPS_TOLERANCE = 0.1


@dataclasses.dataclass(frozen=True)
class Coefficients:
    """Scaling multipliers derived from (phi, alpha, beta, gamma).

    Attributes:
        depth: depth multiplier d = alpha**phi.
        width: width multiplier w = beta**phi.
        resolution: resolution multiplier r = gamma**phi.
        flops_factor: alpha * beta**2 * gamma**2, the per-unit-phi FLOPs growth.
    """

    depth: float
    width: float
    resolution: float
    flops_factor: float


def round_filters(filters, width, divisor=8, guard=True) -> int:
    """Scales a channel count by `width`, rounded to a multiple of `divisor`.

    Never goes below `divisor`. With `guard` (EfficientNet), never drops more
    than 10% below the exact scaled value (the reference implementation's
    guard); EfficientNetV2's reference rounds without it (16 channels at width
    1.2 stay 16 instead of 24).
    """
    if filters <= 0:
        raise ValueError(f"`filters` must be positive. Received: filters={filters}")
    if width <= 0:
        raise ValueError(f"`width` must be positive. Received: width={width}")
    if divisor <= 0:
        raise ValueError(f"`divisor` must be positive. Received: divisor={divisor}")
    scaled = filters * width
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    if guard and rounded < 0.9 * scaled:
        rounded += divisor
    return int(rounded)


def round_repeats(repeats, depth) -> int:
    """Scales a stage's block count by `depth`, rounding up."""
    if repeats <= 0:
        raise ValueError(f"`repeats` must be positive. Received: repeats={repeats}")
    if depth <= 0:
        raise ValueError(f"`depth` must be positive. Received: depth={depth}")
    return int(math.ceil(depth * repeats))


def flops_factor(alpha, beta, gamma) -> float:
    """Returns alpha * beta**2 * gamma**2 (FLOPs growth per unit of phi)."""
    return alpha * beta**2 * gamma**2


def compound_coefficients(phi, alpha=1.2, beta=1.1, gamma=1.15, warn=True) -> Coefficients:
    """Returns the depth/width/resolution multipliers for compound scaling.

    Args:
        phi: compound coefficient (>= 0); 0 is the baseline.
        alpha: depth base (>= 1).
        beta: width base (>= 1).
        gamma: resolution base (>= 1).
        warn: warn when alpha * beta**2 * gamma**2 is more than 10% from 2.

    Returns:
        A `Coefficients` instance.
    """
    for arg, value in (("alpha", alpha), ("beta", beta), ("gamma", gamma)):
        if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 1:
            raise ValueError(f"`{arg}` must be a finite number >= 1. Received: {arg}={value!r}")
    if not isinstance(phi, (int, float)) or not math.isfinite(phi) or phi < 0:
        raise ValueError(f"`phi` must be a finite number >= 0. Received: phi={phi!r}")
    factor = flops_factor(alpha, beta, gamma)
    if warn and abs(factor - FLOPS_TARGET) > FLOPS_TOLERANCE * FLOPS_TARGET:
        warnings.warn(
            f"alpha * beta^2 * gamma^2 = {factor:.3f} (alpha={alpha}, beta={beta}, "
            f"gamma={gamma}) is far from {FLOPS_TARGET}: FLOPs will grow by about "
            f"{factor:.2f}^phi instead of 2^phi.",
            stacklevel=2,
        )
    return Coefficients(
        depth=alpha**phi, width=beta**phi, resolution=gamma**phi, flops_factor=factor
    )


def scaled_resolution(base_resolution, resolution_multiplier, divisor=1) -> int:
    """Input resolution for a multiplier, rounded to a multiple of `divisor`."""
    if base_resolution < 32:
        raise ValueError(
            f"`base_resolution` must be >= 32. Received: base_resolution={base_resolution}"
        )
    value = base_resolution * resolution_multiplier
    return max(32, int(round(value / divisor)) * divisor)
