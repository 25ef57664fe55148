"""EfficientNetV2 against keras.applications: parameters, outputs, files, preprocessing."""

import inspect

import keras
import numpy as np
import pytest
from keras.src.applications import efficientnet_v2 as reference_v2

import keras_effnet
from keras_effnet import keras_internals
from keras_effnet.core import builder, variants
from keras_effnet.core import weights as weights_lib
from keras_effnet.core.layers import FusedMBConv, MBConv

from helpers import random_images, randomize_batchnorm, save_official_h5

# (include_top with 1000 classes, without top), from keras.applications.
GOLDEN_PARAMS = {
    "v2b0": (7_200_312, 5_919_312),
    "v2b1": (8_212_124, 6_931_124),
    "v2b2": (10_178_374, 8_769_374),
    "v2b3": (14_467_622, 12_930_622),
    "v2s": (21_612_360, 20_331_360),
    "v2m": (54_431_388, 53_150_388),
    "v2l": (119_027_848, 117_746_848),
}
KERAS_NAMES = {
    "v2b0": "B0",
    "v2b1": "B1",
    "v2b2": "B2",
    "v2b3": "B3",
    "v2s": "S",
    "v2m": "M",
    "v2l": "L",
}


def _reference(name, **kwargs):
    ctor = getattr(keras.applications, "EfficientNetV2" + KERAS_NAMES[name])
    return ctor(weights=None, **kwargs)


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(n, marks=pytest.mark.slow) if n in ("v2m", "v2l") else n
        for n in sorted(GOLDEN_PARAMS)
    ],
)
def test_param_counts_equal_keras_applications(name):
    top, notop = GOLDEN_PARAMS[name]
    v = variants.get_variant(name)
    plan = builder.build_plan(v.width, v.depth, baseline=v.baseline)
    assert plan.parameters() == top and plan.parameters(include_top=False) == notop
    assert keras_effnet.get_model(name).count_params() == top
    keras.backend.clear_session()
    assert keras_effnet.get_model(name, include_top=False).count_params() == notop
    keras.backend.clear_session()


def test_golden_counts_are_keras_applications_counts():
    for name in ("v2b0", "v2s"):
        assert _reference(name).count_params() == GOLDEN_PARAMS[name][0]


@pytest.mark.parametrize("name", sorted(KERAS_NAMES))
def test_constructors_match_keras_applications(name):
    ours = getattr(keras_effnet, "EfficientNetV2" + KERAS_NAMES[name])
    theirs = getattr(keras.applications, "EfficientNetV2" + KERAS_NAMES[name])
    assert ours.__name__ == theirs.__name__
    assert set(inspect.signature(theirs).parameters) <= set(inspect.signature(ours).parameters)
    assert keras_effnet.get_variant(theirs.__name__).name == name
    model = keras_effnet.get_model(name, include_top=False, input_shape=(32, 32, 3))
    assert model.name == inspect.signature(theirs).parameters["name"].default


@pytest.mark.parametrize(
    "name,include_top,shape",
    [
        ("v2b0", True, (65, 97, 3)),
        ("v2b0", False, (33, 47, 3)),
        pytest.param("v2s", True, (57, 57, 3), marks=pytest.mark.slow),
        pytest.param("v2b3", False, (41, 41, 3), marks=pytest.mark.slow),
    ],
)
def test_outputs_equal_keras_applications_with_official_file(tmp_path, name, include_top, shape):
    kwargs = {"include_top": include_top, "input_shape": shape}
    if include_top:
        kwargs["classifier_activation"] = None  # compare logits, not a near-uniform softmax
    ref = _reference(name, **kwargs)
    randomize_batchnorm(ref)
    path = str(tmp_path / f"efficientnetv2-{name[2:]}.h5")
    save_official_h5(ref, path)
    ours = keras_effnet.get_model(name, weights=path, **kwargs)
    x = random_images(3, *shape[:2])
    expected = ref.predict(x, verbose=0)
    assert np.abs(expected).max() > 1e-2  # a meaningful comparison
    np.testing.assert_allclose(ours.predict(x, verbose=0), expected, atol=1e-4, rtol=0)


def test_layer_names_match_keras_applications():
    ref = keras.applications.EfficientNetV2B0(weights=None)
    ours = keras_effnet.EfficientNetV2B0()
    ref_names = {l.name for l in ref.layers if l.weights}
    ours_names = {
        l.name
        for l in keras_internals.flatten_layers(ours)
        if l.weights and not keras_internals.sublayers(l)
    }
    assert ref_names == ours_names
    assert isinstance(ours.get_layer("block1a"), FusedMBConv)
    assert isinstance(ours.get_layer("block4a"), MBConv)
    bns = [
        l
        for l in keras_internals.flatten_layers(ours)
        if isinstance(l, keras.layers.BatchNormalization)
    ]
    assert {l.momentum for l in bns} == {0.9}  # keras.applications' V2 momentum


@pytest.mark.parametrize("name", sorted(KERAS_NAMES))
@pytest.mark.parametrize("include_top", [True, False])
def test_imagenet_files_are_keras_applications_files(monkeypatch, name, include_top):
    calls = []
    monkeypatch.setattr(
        "keras.utils.get_file",
        lambda *args, **kwargs: calls.append((args, kwargs)) or "/cached/file.h5",
    )
    assert weights_lib.imagenet_weights_path(name, include_top) == "/cached/file.h5"
    key = "b" + name[3:] if name.startswith("v2b") else "-" + name[2:]
    file_name = f"efficientnetv2{key if key[0] == '-' else '-' + key}"
    file_name += ".h5" if include_top else "_notop.h5"
    digest = reference_v2.WEIGHTS_HASHES[key][0 if include_top else 1]
    assert calls == [
        (
            (file_name, reference_v2.BASE_WEIGHTS_PATH + file_name),
            {"cache_subdir": "models", "file_hash": digest},
        )
    ]


def test_imagenet_loads_the_hash_checked_file(monkeypatch, tmp_path):
    source = keras_effnet.EfficientNetV2B0(include_top=False, input_shape=(32, 32, 3))
    randomize_batchnorm(source)
    path = str(tmp_path / "efficientnetv2-b0_notop.h5")
    save_official_h5(source, path)
    calls = []

    def fake_get_file(fname, origin, cache_subdir, file_hash):
        calls.append((fname, origin, cache_subdir, file_hash))
        return path

    monkeypatch.setattr("keras.utils.get_file", fake_get_file)
    model = keras_effnet.EfficientNetV2B0(
        weights="imagenet", include_top=False, input_shape=(32, 32, 3)
    )
    assert calls == [
        (
            "efficientnetv2-b0_notop.h5",
            "https://storage.googleapis.com/tensorflow/keras-applications/"
            "efficientnet_v2/efficientnetv2-b0_notop.h5",
            "models",
            "893217f2bb855e2983157299931e43ff",
        )
    ]
    # V2 has no tensorflow#49930 correction: its normalization is already right.
    assert "rescaling_imagenet_std" not in [l.name for l in model.layers]
    x = random_images(2, 32, 32)
    np.testing.assert_allclose(model.predict(x, verbose=0), source.predict(x, verbose=0), atol=1e-5)


def _preprocessed(model, x):
    return keras.ops.convert_to_numpy(
        keras.Model(model.inputs, model.get_layer("stem_conv").input)(x)
    )


@pytest.mark.slow  # Kept out of the default run's 10-minute budget (README, Set-up).
def test_preprocessing_contract():
    x = random_images(2, 32, 32)
    x[0, 0, 0] = (0.0, 127.5, 255.0)
    s = keras_effnet.EfficientNetV2S(include_top=False, input_shape=(32, 32, 3))
    got = _preprocessed(s, x)
    np.testing.assert_allclose(got, x / 128.0 - 1.0, atol=1e-6)
    assert got.min() >= -1.0 and got.max() <= 127 / 128  # [-1, 0.992], as keras.applications
    b0 = keras_effnet.EfficientNetV2B0(include_top=False, input_shape=(32, 32, 3))
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    np.testing.assert_allclose(_preprocessed(b0, x), (x / 255.0 - mean) / std, atol=1e-5)
    assert not b0.get_layer("normalization").weights  # constants, as keras.applications
    # Without in-graph preprocessing the caller's mapping gives the same output.
    bare = keras_effnet.EfficientNetV2S(
        include_top=False, input_shape=(32, 32, 3), include_preprocessing=False
    )
    bare.set_weights(s.get_weights())
    np.testing.assert_allclose(
        bare.predict(x / 128.0 - 1.0, verbose=0), s.predict(x, verbose=0), atol=1e-5
    )


def test_feature_extractor_on_v2():
    for name, channels in (("v2b0", (16, 32, 48, 112, 1280)), ("v2s", (24, 48, 64, 160, 1280))):
        base = keras_effnet.get_model(name, include_top=False, input_shape=(128, 96, 3))
        maps = keras_effnet.feature_extractor(base)(random_images(1, 128, 96))
        for (level, stride), depth in zip(keras_effnet.FEATURE_STRIDES.items(), channels):
            assert tuple(maps[level].shape[1:]) == (128 // stride, 96 // stride, depth), level


def test_v2_names_and_refusals():
    assert (
        keras_effnet.get_model("efficientnetv2-s", include_top=False, input_shape=(32, 32, 3)).name
        == "efficientnetv2-s"
    )
    with pytest.raises(ValueError, match="would have .* allow_large=True"):
        keras_effnet.build_efficientnet(3.0, 3.0, 384, baseline="v2-s", weights=None)
    with pytest.raises(ValueError, match="lite=True, baseline='v2-b'"):
        keras_effnet.build_efficientnet(1.0, 1.0, 224, baseline="v2-b", lite=True)
    with pytest.raises(ValueError, match="baseline='v3'"):
        keras_effnet.build_efficientnet(1.0, 1.0, 224, baseline="v3")
    with pytest.raises(ValueError, match="classes=10"):
        keras_effnet.EfficientNetV2S(weights="imagenet", classes=10)
    with pytest.raises(ValueError, match="name='v2xl'"):
        keras_effnet.get_model("v2xl")
