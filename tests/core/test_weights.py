"""Weight files: official format, our own format, ImageNet download plumbing, errors."""

import h5py
import numpy as np
import pytest

import keras_effnet
from keras_effnet.core import weights as weights_lib

from helpers import random_images, randomize_batchnorm, save_official_h5


def test_own_weights_file_round_trip(tmp_path):
    model = keras_effnet.EfficientNetLite0(classes=5, input_shape=(32, 32, 3))
    randomize_batchnorm(model)
    path = str(tmp_path / "lite0.weights.h5")
    model.save_weights(path)
    loaded = keras_effnet.EfficientNetLite0(classes=5, input_shape=(32, 32, 3), weights=path)
    x = random_images(2, 32, 32)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)


def test_imagenet_uses_official_url_and_hash(monkeypatch, tmp_path):
    source = keras_effnet.EfficientNetB0(include_top=False, input_shape=(32, 32, 3))
    randomize_batchnorm(source)
    path = str(tmp_path / "efficientnetb0_notop.h5")
    save_official_h5(source, path)
    calls = []

    def fake_get_file(fname, origin, cache_subdir, file_hash):
        calls.append((fname, origin, cache_subdir, file_hash))
        return path

    monkeypatch.setattr("keras.utils.get_file", fake_get_file)
    model = keras_effnet.EfficientNetB0(
        weights="imagenet", include_top=False, input_shape=(32, 32, 3)
    )
    assert calls == [
        (
            "efficientnetb0_notop.h5",
            "https://storage.googleapis.com/keras-applications/efficientnetb0_notop.h5",
            "models",
            "50bc09e76180e00e4465e1a485ddc09d",
        )
    ]
    # The ImageNet correction layer is present only for the official ImageNet weights.
    assert model.get_layer("rescaling_imagenet_std") is not None
    np.testing.assert_allclose(
        model.get_layer("stem_conv").kernel.numpy(), source.get_layer("stem_conv").kernel.numpy()
    )


def test_wrong_architecture_names_the_layer(tmp_path):
    b0 = keras_effnet.EfficientNetB0(include_top=False, input_shape=(32, 32, 3))
    path = str(tmp_path / "b0.h5")
    save_official_h5(b0, path)
    with pytest.raises(ValueError, match="does not match model 'efficientnetb1'"):
        keras_effnet.EfficientNetB1(include_top=False, input_shape=(32, 32, 3), weights=path)
    with pytest.raises(ValueError, match="predictions"):
        keras_effnet.EfficientNetB0(include_top=True, input_shape=(32, 32, 3), weights=path)


def test_shape_mismatch_names_layer_and_nothing_is_assigned(tmp_path):
    b0 = keras_effnet.EfficientNetB0(classes=10, input_shape=(32, 32, 3))
    path = str(tmp_path / "b0.h5")
    save_official_h5(b0, path)
    target = keras_effnet.EfficientNetB0(classes=11, input_shape=(32, 32, 3))
    before = target.get_layer("stem_conv").kernel.numpy().copy()
    with pytest.raises(ValueError, match="'predictions'"):
        weights_lib.load_weights(target, path)
    np.testing.assert_array_equal(target.get_layer("stem_conv").kernel.numpy(), before)


def test_corrupt_and_foreign_files(tmp_path):
    corrupt = tmp_path / "corrupt.h5"
    corrupt.write_bytes(b"\x89HDF\r\n\x1a\n" + b"garbage" * 100)
    with pytest.raises(ValueError, match="corrupt.h5"):
        keras_effnet.EfficientNetB0(weights=str(corrupt))
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f.create_dataset("x", data=np.zeros(3))
    with pytest.raises(ValueError, match="foreign.h5"):
        keras_effnet.EfficientNetB0(weights=str(foreign))
    bad_ext = tmp_path / "weights.bin"
    bad_ext.write_bytes(b"0")
    with pytest.raises(ValueError, match="weights.bin"):
        keras_effnet.EfficientNetB0(weights=str(bad_ext))
    broken = tmp_path / "broken.weights.h5"
    broken.write_bytes(b"not an h5 file")
    with pytest.raises(ValueError, match="broken.weights.h5"):
        keras_effnet.EfficientNetB0(weights=str(broken))
