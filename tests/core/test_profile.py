"""Analytic FLOPs agree with TensorFlow's profiler."""

import pytest

import keras_effnet

from helpers import profiler_flops


@pytest.mark.parametrize(
    "name,shape",
    [
        ("b0", None),
        pytest.param("b3", None, marks=pytest.mark.slow),
        ("lite0", (160, 160, 3)),
        ("v2b0", None),
        pytest.param("v2s", (193, 193, 3), marks=pytest.mark.slow),
    ],
)
def test_flops_within_three_percent_of_tf_profiler(name, shape):
    kwargs = {"input_shape": shape} if shape else {}
    model = keras_effnet.get_model(name, **kwargs)
    profile = keras_effnet.model_profile(model)
    assert profile["params"] == model.count_params()
    reference = profiler_flops(model)
    assert abs(profile["flops"] - reference) / reference < 0.03


@pytest.mark.parametrize("name", ["MobileNetV3Small", "MobileNetV3Large"])
def test_reference_with_raw_ops_is_counted(name):
    # keras.applications' MobileNetV3 computes hard-sigmoid with raw keras.ops
    # (x + 3, * 1/6), not layers: counted as element-wise work, the MACs as
    # published (56M and 217M at 224 px, Howard et al. 2019, Table 3 and 2).
    import keras

    model = getattr(keras.applications, name)(input_shape=(224, 224, 3), weights=None)
    profile = keras_effnet.model_profile(model)
    assert profile["params"] == model.count_params()
    assert abs(profile["macs"] / 1e6 - {"MobileNetV3Small": 56, "MobileNetV3Large": 217}[name]) < 2
    reference = profiler_flops(model)
    assert abs(profile["flops"] - reference) / reference < 0.03


def test_b0_macs_match_paper():
    profile = keras_effnet.model_profile(keras_effnet.EfficientNetB0())
    assert 0.38e9 < profile["macs"] < 0.40e9  # paper: 0.39B FLOPs (multiply-adds)


def test_v2_profile_counts_fused_blocks():
    model = keras_effnet.EfficientNetV2B0(include_top=False, input_shape=(64, 64, 3))
    rows = {r["layer"]: r for r in keras_effnet.model_profile(model, per_layer=True)["layers"]}
    # block2a is a Fused-MBConv: 3x3 conv 16 -> 64 at stride 2 (32x32 -> 16x16), then 1x1 -> 32.
    assert rows["block2a_expand_conv"]["macs"] == 16 * 16 * 9 * 16 * 64
    assert rows["block2a_project_conv"]["macs"] == 16 * 16 * 64 * 32
    assert "block2a_dwconv2" not in rows and rows["block4a_dwconv2"]["macs"] == 4 * 4 * 9 * 192


def test_profile_needs_static_shape():
    model = keras_effnet.EfficientNetB0(include_top=False, input_shape=(None, None, 3))
    with pytest.raises(ValueError, match="static input size"):
        keras_effnet.model_profile(model)
