"""Every public layer round-trips its config and .keras saving."""

import keras
import numpy as np
import pytest

import keras_effnet
from keras_effnet import keras_internals
from keras_effnet.core.layers import FusedMBConv, MBConv, SqueezeExcite, StochasticDepth

from helpers import random_images

LAYERS = [
    (
        MBConv,
        dict(
            filters_in=16,
            filters_out=16,
            kernel_size=3,
            strides=1,
            expand_ratio=6,
            se_ratio=0.25,
            drop_rate=0.1,
            name="block9a",
        ),
        (2, 9, 9, 16),
    ),
    (
        MBConv,
        dict(
            filters_in=16,
            filters_out=24,
            kernel_size=5,
            strides=2,
            expand_ratio=1,
            se_ratio=0.0,
            activation="relu6",
            name="block9b",
        ),
        (2, 9, 9, 16),
    ),
    (
        MBConv,
        dict(
            filters_in=8,
            filters_out=8,
            expand_ratio=4,
            se_ratio=0.25,
            bn_momentum=0.9,
            depthwise_name="dwconv2",
            drop_rate=0.1,
            name="block9c",
        ),
        (2, 7, 7, 8),
    ),
    (
        FusedMBConv,
        dict(
            filters_in=8,
            filters_out=8,
            kernel_size=3,
            strides=1,
            expand_ratio=4,
            se_ratio=0.25,
            drop_rate=0.1,
            bn_momentum=0.9,
            name="block9d",
        ),
        (2, 9, 9, 8),
    ),
    (
        FusedMBConv,
        dict(
            filters_in=8,
            filters_out=16,
            kernel_size=3,
            strides=2,
            expand_ratio=1,
            activation="relu6",
            name="block9e",
        ),
        (2, 9, 9, 8),
    ),
    (SqueezeExcite, dict(filters=16, se_filters=4, name="se"), (2, 5, 5, 16)),
    (StochasticDepth, dict(rate=0.3, seed=1), (4, 3, 3, 2)),
]


@pytest.mark.parametrize("cls,kwargs,shape", LAYERS)
def test_config_round_trip_and_same_output(cls, kwargs, shape):
    layer = cls(**kwargs)
    x = np.random.default_rng(0).normal(size=shape).astype("float32")
    y = layer(x)
    config = layer.get_config()
    for key, value in kwargs.items():
        assert config[key] == value
    clone = cls.from_config(config)
    clone(x)
    clone.set_weights(layer.get_weights())
    np.testing.assert_allclose(clone(x), y, atol=1e-6)
    assert tuple(layer.compute_output_shape(shape)) == tuple(y.shape)


@pytest.mark.parametrize("cls,kwargs,shape", LAYERS)
def test_layer_saves_in_keras_format(tmp_path, cls, kwargs, shape):
    inputs = keras.Input(shape[1:])
    model = keras.Model(inputs, cls(**kwargs)(inputs))
    path = str(tmp_path / "layer.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    x = np.random.default_rng(1).normal(size=shape).astype("float32")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)


def test_mbconv_skip_and_stochastic_depth_behaviour():
    block = MBConv(8, 8, expand_ratio=2, se_ratio=0.25, drop_rate=0.5, name="block1z")
    x = np.random.default_rng(0).normal(size=(64, 4, 4, 8)).astype("float32")
    eval_out = keras.ops.convert_to_numpy(block(x, training=False))
    assert block.has_skip
    train_out = keras.ops.convert_to_numpy(block(x, training=True))
    # Dropped samples reduce to the identity skip exactly.
    dropped = np.all(np.isclose(train_out, x), axis=(1, 2, 3))
    assert 10 < dropped.sum() < 54
    assert not np.allclose(eval_out, x)
    assert StochasticDepth(0.5)(x, training=False) is x or np.allclose(StochasticDepth(0.5)(x), x)


def _leaf_names(layer):
    return {
        l.name for l in keras_internals.flatten_layers(layer) if not keras_internals.sublayers(l)
    }


def test_fused_mbconv_structure():
    expanded = FusedMBConv(8, 8, expand_ratio=4, se_ratio=0.25, drop_rate=0.2, name="block1a")
    x = np.random.default_rng(0).normal(size=(64, 6, 6, 8)).astype("float32")
    eval_out = keras.ops.convert_to_numpy(expanded(x, training=False))
    assert expanded.has_skip and not np.allclose(eval_out, x)
    # The k x k conv expands; the projection is a linear 1x1 conv (paper figure 2).
    assert expanded.expand_layers[0].kernel_size == (3, 3)
    assert expanded.project_layers[0].kernel_size == (1, 1)
    assert _leaf_names(expanded) == {
        "block1a_expand_conv",
        "block1a_expand_bn",
        "block1a_expand_activation",
        "block1a_se_squeeze",
        "block1a_se_reduce",
        "block1a_se_reduce_activation",
        "block1a_se_expand",
        "block1a_se_excite",
        "block1a_project_conv",
        "block1a_project_bn",
        "block1a_drop",
        "block1a_add",
    }
    train_out = keras.ops.convert_to_numpy(expanded(x, training=True))
    dropped = np.all(np.isclose(train_out, x), axis=(1, 2, 3))
    assert 3 < dropped.sum() < 30  # rate 0.2 of 64 samples
    single = FusedMBConv(8, 16, kernel_size=3, strides=2, name="block2a")
    y = single(x)
    assert tuple(y.shape) == (64, 3, 3, 16) and not single.has_skip
    # expand_ratio == 1: one k x k conv, BatchNorm and activation, nothing else.
    assert _leaf_names(single) == {
        "block2a_project_conv",
        "block2a_project_bn",
        "block2a_project_activation",
    }
    assert single.project_layers[0].kernel_size == (3, 3)
    assert single.project_layers[0].strides == (2, 2)


def test_layer_argument_errors():
    with pytest.raises(ValueError, match="strides=3"):
        MBConv(8, 8, strides=3)
    with pytest.raises(ValueError, match="activation='tanh'"):
        MBConv(8, 8, activation="tanh")
    with pytest.raises(ValueError, match="rate=1"):
        StochasticDepth(1)
    with pytest.raises(ValueError, match="input_shape"):
        MBConv(8, 8, name="block1z")(np.zeros((1, 4, 4, 3), "float32"))
    with pytest.raises(ValueError, match="depthwise_name='dw'"):
        MBConv(8, 8, depthwise_name="dw")
    with pytest.raises(ValueError, match="expand_ratio=0"):
        FusedMBConv(8, 8, expand_ratio=0)
    with pytest.raises(ValueError, match="bn_momentum=1.5"):
        FusedMBConv(8, 8, bn_momentum=1.5)
    with pytest.raises(ValueError, match="input_shape"):
        FusedMBConv(8, 8, name="block1y")(np.zeros((1, 4, 4, 3), "float32"))


@pytest.mark.parametrize("name", ["b0", "lite0", "v2b0"])
def test_model_keras_round_trip_safe_mode(tmp_path, name):
    model = keras_effnet.get_model(name, input_shape=(48, 48, 3), classes=7)
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    x = random_images(2, 48, 48)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)
    assert isinstance(loaded.get_layer("block2a"), FusedMBConv if name == "v2b0" else MBConv)
    if name == "v2b0":
        assert isinstance(loaded.get_layer("block4a"), MBConv)
        assert loaded.get_layer("block4a").get_config() == model.get_layer("block4a").get_config()
