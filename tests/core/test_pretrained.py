"""Weight sources: "imagenet" for every variant, timm tags, downloads, offline errors, normalization."""

import json
import warnings

import numpy as np
import pytest

import keras_effnet
from keras_effnet.core import checkpoints, pretrained, variants

SIZE = 64


def test_every_variant_has_imagenet_weights():
    for name in variants.VARIANTS:
        source = pretrained.resolve("imagenet", name)
        assert source.kind in ("keras_applications", "timm"), name
        if variants.get_variant(name).lite:
            assert source.timm_tag.name == f"tf_efficientnet_{name}.in1k"
            assert source.timm_tag.normalization == pretrained.INCEPTION


def test_every_timm_tag_maps_to_its_variant():
    assert len(pretrained.TIMM_TAGS) == 52  # every tf_ B0-B7, Lite0-4, V2 tag of timm 1.0.31
    for tag in pretrained.TIMM_TAGS.values():
        assert pretrained.TIMM_ARCHITECTURES[tag.variant] == tag.architecture
        assert pretrained.resolve(f"timm:{tag.name}", tag.variant, classes=tag.num_classes)
    # timm's default tag when none is given.
    assert pretrained.parse_timm_name("tf_efficientnet_b0").tag == "ns_jft_in1k"
    assert (
        pretrained.parse_timm_name("tf_efficientnet_b0.ap_in1k").normalization
        == pretrained.INCEPTION
    )


@pytest.mark.parametrize(
    "weights, variant, kwargs, message",
    [
        ("timm:tf_efficientnet_b0.nope", "b0", {}, "Unknown timm tag .* has the tags aa_in1k"),
        ("timm:resnet50.a1_in1k", "b0", {}, "Unknown timm architecture 'resnet50'"),
        ("timm:efficientnet_b0.ra_in1k", "b0", {}, "symmetric padding.*'timm:tf_efficientnet_b0'"),
        ("timm:efficientnetv2_rw_s.ra2_in1k", "v2s", {}, "symmetric padding"),
        (
            "timm:tf_efficientnet_lite1.in1k",
            "lite0",
            {},
            "of EfficientNet-Lite1, not of EfficientNet-Lite0",
        ),
        ("timm:tf_efficientnet_b0", "b0", {"classes": 10}, "`classes` must be 1000"),
        ("timm:tf_efficientnetv2_s.in21k", "v2s", {}, "`classes` must be 21843"),
        ("imagenet", "lite0", {"classes": 5}, "`classes` must be 1000"),
        ("imagenet", None, {}, "not for custom scaling"),
        ("/nonexistent/lite0.safetensors", "lite0", {}, "Weights file not found"),
        (3, "b0", {}, "`weights` must be None"),
    ],
)
def test_bad_weights_argument_one_clear_line(weights, variant, kwargs, message):
    with pytest.raises(ValueError, match=message) as err:
        pretrained.resolve(weights, variant, **kwargs)
    assert "\n" not in str(err.value)
    assert "Received" in str(err.value)


def test_offline_download_names_file_address_and_place(monkeypatch, tmp_path):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))

    def offline(*args, **kwargs):
        raise Exception("URL fetch failure on https://huggingface.co/...: None -- [Errno -2]")

    monkeypatch.setattr("keras.utils.get_file", offline)
    with pytest.raises(ValueError) as err:
        keras_effnet.EfficientNetLite0(weights="imagenet")
    message = str(err.value)
    assert "\n" not in message
    assert "tf_efficientnet_lite0.in1k.safetensors" in message
    assert (
        "https://huggingface.co/timm/tf_efficientnet_lite0.in1k/resolve/main/model.safetensors"
        in message
    )
    assert str(tmp_path / "models" / "timm" / "tf_efficientnet_lite0.in1k.safetensors") in message
    assert not list(tmp_path.rglob("*.safetensors"))


def test_hand_placed_file_loads_with_the_tags_normalization(monkeypatch, tmp_path):
    """A file placed where the error says is used without a download, with its tag's mean/std."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setattr("keras.utils.get_file", lambda *a, **k: pytest.fail("downloaded"))
    source = keras_effnet.EfficientNetLite0(input_shape=(SIZE, SIZE, 3))
    tag = pretrained.TIMM_TAGS["tf_efficientnet_lite0.in1k"]
    checkpoints.save_timm_safetensors(source, pretrained.cached_path(tag))
    model = keras_effnet.EfficientNetLite0(weights="imagenet", input_shape=(SIZE, SIZE, 3))
    norm = model.get_layer("normalization")
    np.testing.assert_allclose(np.ravel(norm.mean), [0.5] * 3)
    np.testing.assert_allclose(np.ravel(norm.variance), [0.25] * 3)
    np.testing.assert_array_equal(
        model.get_layer("stem_conv").kernel.numpy(), source.get_layer("stem_conv").kernel.numpy()
    )


def test_v2_takes_its_checkpoints_normalization(monkeypatch, tmp_path):
    """V2-S from a timm tag maps pixels as (x / 255 - 0.5) / 0.5, not keras.applications' x / 128 - 1."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    source = keras_effnet.EfficientNetV2S(input_shape=(SIZE, SIZE, 3))
    tag = pretrained.TIMM_TAGS["tf_efficientnetv2_s.in21k_ft_in1k"]
    checkpoints.save_timm_safetensors(source, pretrained.cached_path(tag))
    model = keras_effnet.EfficientNetV2S(weights=f"timm:{tag.name}", input_shape=(SIZE, SIZE, 3))
    pixels = np.array([[[[0.0, 127.5, 255.0]]]], "float32")
    normalized = model.get_layer("normalization")(model.get_layer("rescaling")(pixels))
    np.testing.assert_allclose(np.ravel(normalized), [-1.0, 0.0, 1.0], atol=1e-6)


def test_local_file_normalization_from_metadata_config_or_default(tmp_path):
    lite = keras_effnet.EfficientNetLite0(input_shape=(SIZE, SIZE, 3))
    custom = pretrained.InputNormalization((0.1, 0.2, 0.3), (0.4, 0.5, 0.6))
    with_meta = checkpoints.save_timm_safetensors(
        lite, str(tmp_path / "meta" / "m.safetensors"), normalization=custom
    )
    model = keras_effnet.EfficientNetLite0(weights=with_meta, input_shape=(SIZE, SIZE, 3))
    np.testing.assert_allclose(np.ravel(model.get_layer("normalization").mean), custom.mean)

    # The hub's layout: a bare state dict, config.json with pretrained_cfg beside it.
    from safetensors.numpy import save_file

    (tmp_path / "hub").mkdir()
    bare = str(tmp_path / "hub" / "model.safetensors")
    save_file(checkpoints.timm_state(lite), bare)
    (tmp_path / "hub" / "config.json").write_text(
        json.dumps({"architecture": "tf_efficientnet_lite0", "pretrained_cfg": custom.to_json()})
    )
    model = keras_effnet.EfficientNetLite0(weights=bare, input_shape=(SIZE, SIZE, 3))
    np.testing.assert_allclose(
        np.ravel(model.get_layer("normalization").variance), np.square(custom.std)
    )

    (tmp_path / "hub" / "config.json").unlink()
    with pytest.warns(UserWarning, match="assuming tf_efficientnet_lite0.in1k's mean"):
        keras_effnet.EfficientNetLite0(weights=bare, input_shape=(SIZE, SIZE, 3))


def test_file_of_another_architecture_by_metadata_is_refused(tmp_path):
    lite = keras_effnet.EfficientNetLite0(input_shape=(SIZE, SIZE, 3))
    path = checkpoints.save_timm_safetensors(
        lite, str(tmp_path / "x.safetensors"), architecture="tf_efficientnet_lite1"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match="holds tf_efficientnet_lite1 weights"):
            keras_effnet.EfficientNetLite0(weights=path, input_shape=(SIZE, SIZE, 3))
