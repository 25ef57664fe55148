"""The model core against keras.applications: parameters, outputs, names."""

import keras
import numpy as np
import pytest

import keras_effnet
from keras_effnet import keras_internals
from keras_effnet.core.layers import MBConv, SqueezeExcite

from helpers import random_images, randomize_batchnorm, save_official_h5

# (include_top with 1000 classes, without top), from keras.applications.
GOLDEN_PARAMS = {
    "b0": (5_330_571, 4_049_571),
    "b1": (7_856_239, 6_575_239),
    "b2": (9_177_569, 7_768_569),
    "b3": (12_320_535, 10_783_535),
    "b4": (19_466_823, 17_673_823),
    "b5": (30_562_527, 28_513_527),
    "b6": (43_265_143, 40_960_143),
    "b7": (66_658_687, 64_097_687),
}


@pytest.mark.parametrize("name", sorted(GOLDEN_PARAMS))
def test_param_counts_equal_keras_applications(name):
    top, notop = GOLDEN_PARAMS[name]
    assert keras_effnet.get_model(name).count_params() == top
    assert keras_effnet.get_model(name, include_top=False).count_params() == notop


def test_public_constructors_match_keras_applications_signature():
    model = keras_effnet.EfficientNetB1(weights=None)
    assert model.name == "efficientnetb1"
    assert tuple(model.input_shape) == (None, 240, 240, 3)
    assert tuple(model.output_shape) == (None, 1000)
    assert model.get_layer("predictions").activation.__name__ == "softmax"


def _reference(name, **kwargs):
    ctor = getattr(keras.applications, "EfficientNet" + name.upper())
    ref = ctor(weights=None, **kwargs)
    randomize_batchnorm(ref)
    return ref


@pytest.mark.parametrize(
    "name,include_top,shape",
    [
        ("b0", True, (64, 64, 3)),
        ("b0", False, (65, 97, 3)),
        ("b2", True, (48, 48, 3)),
        # B3 and B5 take 15-20 s each to build twice: slow.
        pytest.param("b3", False, (33, 40, 3), marks=pytest.mark.slow),
        pytest.param("b5", True, (32, 32, 3), marks=pytest.mark.slow),
    ],
)
def test_outputs_equal_keras_applications_with_official_file(tmp_path, name, include_top, shape):
    kwargs = {"include_top": include_top, "input_shape": shape}
    if include_top:
        kwargs["classifier_activation"] = None  # compare logits, not a near-uniform softmax
    ref = _reference(name, **kwargs)
    path = str(tmp_path / f"efficientnet{name}.h5")
    save_official_h5(ref, path)
    ours = keras_effnet.get_model(name, weights=path, **kwargs)
    x = random_images(3, *shape[:2])
    expected = ref.predict(x, verbose=0)
    assert np.abs(expected).max() > 1e-2  # a meaningful comparison
    np.testing.assert_allclose(ours.predict(x, verbose=0), expected, atol=1e-4, rtol=0)


def test_dynamic_odd_input_is_correct_where_correct_pad_is_not(tmp_path):
    ref = _reference("b0", include_top=False, input_shape=(65, 97, 3))
    path = str(tmp_path / "b0_notop.h5")
    save_official_h5(ref, path)
    ours = keras_effnet.EfficientNetB0(weights=path, include_top=False, input_shape=(None, None, 3))
    x = random_images(2, 65, 97)
    np.testing.assert_allclose(ours.predict(x, verbose=0), ref.predict(x, verbose=0), atol=1e-4)
    # keras.applications with a dynamic shape pads odd inputs as if even.
    dyn_ref = keras.applications.EfficientNetB0(
        weights=None, include_top=False, input_shape=(None, None, 3)
    )
    dyn_ref.set_weights(ref.get_weights())
    wrong, right = dyn_ref.predict(x, verbose=0), ref.predict(x, verbose=0)
    assert wrong.shape != right.shape or np.abs(wrong - right).max() > 1e-3


def test_layer_names_match_keras_applications():
    ref = keras.applications.EfficientNetB0(weights=None)
    ours = keras_effnet.EfficientNetB0()
    ref_names = {l.name for l in ref.layers if l.weights}
    ours_names = {
        l.name
        for l in keras_internals.flatten_layers(ours)
        if l.weights and not keras_internals.sublayers(l)
    }
    assert {n for n in ref_names if not n.startswith("normalization")} <= ours_names
    assert ours.get_layer("block2a").__class__ is MBConv


def test_lite_structure():
    model = keras_effnet.EfficientNetLite4(include_top=False, input_shape=(64, 64, 3))
    layers = keras_internals.flatten_layers(model)
    assert not any(isinstance(l, SqueezeExcite) for l in layers)
    activations = {l.activation.__name__ for l in layers if isinstance(l, keras.layers.Activation)}
    assert activations == {"relu6"}
    assert model.get_layer("stem_conv").filters == 32  # not scaled by width 1.4
    assert model.get_layer("top_conv").filters == 1280
    blocks = [l.name for l in model.layers if isinstance(l, MBConv)]
    assert [b for b in blocks if b.startswith("block1")] == ["block1a"]
    assert [b for b in blocks if b.startswith("block7")] == ["block7a"]
    assert len([b for b in blocks if b.startswith("block2")]) == 4  # ceil(2 * 1.8)
    lite0 = keras_effnet.EfficientNetLite0()
    assert abs(lite0.count_params() - 4.65e6) / 4.65e6 < 0.02  # reported 4.7M
    assert tuple(lite0.input_shape) == (None, 224, 224, 3)


def test_custom_compound_scaling():
    model = keras_effnet.EfficientNet(phi=1.0, include_top=False, input_shape=(64, 64, 3))
    b = keras_effnet.EfficientNet(phi=0.0)
    assert b.count_params() == keras_effnet.EfficientNetB0().count_params()
    assert tuple(keras_effnet.EfficientNet(phi=2.5).input_shape) == (
        None,
        round(224 * 1.15**2.5),
        round(224 * 1.15**2.5),
        3,
    )
    assert model.get_layer("stem_conv").filters == keras_effnet.round_filters(32, 1.1)
    with pytest.warns(UserWarning, match="far from 2"):
        keras_effnet.EfficientNet(
            phi=1.0, alpha=1.5, beta=1.3, gamma=1.3, include_top=False, input_shape=(32, 32, 3)
        )


def test_pooling_and_classes():
    model = keras_effnet.EfficientNetB0(include_top=False, pooling="avg", input_shape=(32, 32, 3))
    assert tuple(model.output_shape) == (None, 1280)
    model = keras_effnet.EfficientNetLite0(classes=10, input_shape=(128, 128, 3))
    assert tuple(model.output_shape) == (None, 10)
    y = model.predict(random_images(2, 128, 128), verbose=0)
    np.testing.assert_allclose(y.sum(axis=1), 1, atol=1e-5)


def test_feature_extractor_strides():
    base = keras_effnet.EfficientNetB1(include_top=False, input_shape=(128, 96, 3))
    backbone = keras_effnet.feature_extractor(base)
    maps = backbone(random_images(1, 128, 96))
    for level, stride in keras_effnet.FEATURE_STRIDES.items():
        assert tuple(maps[level].shape[1:3]) == (128 // stride, 96 // stride), level
    assert maps["P3"].shape[-1] == 40 and maps["P5"].shape[-1] == 1280


def test_stride_1_stem_keeps_a_2x2_map_at_32_px_with_the_same_weights(tmp_path):
    small = keras_effnet.EfficientNetLite0(input_shape=(32, 32, 3), classes=10, stem_strides=1)
    paper = keras_effnet.EfficientNetLite0(input_shape=(32, 32, 3), classes=10)
    assert small.get_layer("top_conv").output.shape[1:3] == (2, 2)
    assert paper.get_layer("top_conv").output.shape[1:3] == (1, 1)
    assert small.count_params() == paper.count_params()
    small.set_weights(paper.get_weights())  # Same variables, same shapes.
    images = random_images(2, 32, 32)
    path = str(tmp_path / "small.keras")
    small.save(path)
    again = keras.saving.load_model(path)
    np.testing.assert_allclose(again(images), small(images), atol=1e-6)
    with pytest.raises(ValueError, match="stem_strides=3"):
        keras_effnet.EfficientNetB0(stem_strides=3)


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: keras_effnet.get_model("b9"), "name='b9'"),
        (lambda: keras_effnet.EfficientNetB0(input_shape=(31, 64, 3)), "at least 32"),
        (lambda: keras_effnet.EfficientNetB0(input_shape=(64, 64, 1)), "input_shape"),
        (lambda: keras_effnet.EfficientNetB0(weights="imagenet", classes=10), "classes=10"),
        (lambda: keras_effnet.EfficientNetLite0(weights="imagenet"), "weights='imagenet'"),
        (lambda: keras_effnet.EfficientNetB0(weights="/no/such/file.h5"), "/no/such/file.h5"),
        (lambda: keras_effnet.EfficientNetB0(pooling="mean", include_top=False), "pooling='mean'"),
        (lambda: keras_effnet.EfficientNetB0(dropout_rate=1.5), "dropout_rate=1.5"),
    ],
)
def test_bad_arguments_raise_one_clear_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()
