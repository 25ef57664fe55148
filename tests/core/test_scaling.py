import math
import warnings

import pytest

from keras_effnet.core import scaling, variants
from keras_effnet.core.builder import scale_blocks


@pytest.mark.parametrize(
    "filters,width,expected",
    [
        (32, 1.0, 32),
        (32, 1.1, 32),
        (32, 1.2, 40),
        (16, 1.4, 24),
        (1280, 2.0, 2560),
        (320, 1.8, 576),
        (40, 1.1, 48),
        (3, 1.0, 8),
        (24, 1.1, 24),
    ],
)
def test_round_filters(filters, width, expected):
    assert scaling.round_filters(filters, width) == expected


def test_round_filters_never_drops_more_than_ten_percent():
    for filters in range(1, 400):
        for width in (0.5, 0.75, 1.0, 1.1, 1.35, 1.8):
            out = scaling.round_filters(filters, width)
            assert out % 8 == 0 and out >= 8
            assert out >= 0.9 * filters * width


@pytest.mark.parametrize(
    "repeats,depth,expected", [(1, 1.0, 1), (2, 1.1, 3), (4, 3.1, 13), (3, 1.8, 6)]
)
def test_round_repeats(repeats, depth, expected):
    assert scaling.round_repeats(repeats, depth) == expected


def test_compound_coefficients_of_the_paper():
    c = scaling.compound_coefficients(1.0)
    assert (c.depth, c.width, c.resolution) == pytest.approx((1.2, 1.1, 1.15))
    assert c.flops_factor == pytest.approx(1.2 * 1.1**2 * 1.15**2)
    assert abs(c.flops_factor - 2) < 0.1
    c3 = scaling.compound_coefficients(3.0)
    assert c3.depth == pytest.approx(1.2**3) and c3.width == pytest.approx(1.1**3)


def test_compound_coefficients_warns_far_from_two():
    with pytest.warns(UserWarning, match="far from 2"):
        scaling.compound_coefficients(1.0, alpha=2.0, beta=1.5, gamma=1.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scaling.compound_coefficients(1.0, 1.2, 1.1, 1.15)


@pytest.mark.parametrize(
    "kwargs,arg",
    [
        ({"alpha": 0.9}, "alpha"),
        ({"beta": float("nan")}, "beta"),
        ({"gamma": 0.5}, "gamma"),
        ({"phi": -1}, "phi"),
    ],
)
def test_compound_coefficients_validation(kwargs, arg):
    args = {"phi": 1.0, "alpha": 1.2, "beta": 1.1, "gamma": 1.15} | kwargs
    with pytest.raises(ValueError, match=f"`{arg}`"):
        scaling.compound_coefficients(**args)


def test_scaled_resolution():
    assert scaling.scaled_resolution(224, 1.15) == 258
    with pytest.raises(ValueError, match="base_resolution"):
        scaling.scaled_resolution(16, 1.0)


def test_variant_table_and_lookup():
    assert [variants.VARIANTS[f"b{i}"].resolution for i in range(8)] == [
        224,
        240,
        260,
        300,
        380,
        456,
        528,
        600,
    ]
    assert variants.get_variant("EfficientNetB3") is variants.VARIANTS["b3"]
    assert variants.get_variant("efficientnet-lite2").lite
    with pytest.raises(ValueError, match="name='b9'"):
        variants.get_variant("b9")


def test_scale_blocks_b0_and_drop_rates():
    blocks = scale_blocks(variants.B0_STAGES, 1.0, 1.0)
    assert len(blocks) == 16
    assert [b.name for b in blocks[:3]] == ["block1a", "block2a", "block2b"]
    assert blocks[0].drop_rate == 0 and blocks[-1].drop_rate == pytest.approx(0.2 * 15 / 16)
    assert blocks[2].filters_in == blocks[2].filters_out == 24 and blocks[2].strides == 1


def test_scale_blocks_does_not_mutate_and_lite_keeps_first_last():
    before = list(variants.B0_STAGES)
    lite = scale_blocks(variants.B0_STAGES, 1.4, 1.8, lite=True)
    assert list(variants.B0_STAGES) == before
    stage_counts = {}
    for b in lite:
        stage_counts[b.name[5]] = stage_counts.get(b.name[5], 0) + 1
    assert stage_counts["1"] == 1 and stage_counts["7"] == 1
    assert stage_counts["2"] == math.ceil(2 * 1.8)
    assert all(b.se_ratio == 0 for b in lite)
