"""timm-format checkpoints: parity with timm's own modules, the writer, refusals.

Every mapped architecture is built by timm itself (random weights, BatchNorm
statistics of real activations), saved as safetensors through timm's state
dict, loaded through our public `weights=` path and compared on the same
random pixels (NHWC for us, NCHW for timm). Small inputs keep it fast; the
full list runs with the slow tests.
"""

import importlib.util
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import keras_effnet
from keras_effnet.core import checkpoints, pretrained

from helpers import timm_references

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("timm") is None,
    reason="timm is a test dependency (pip install -e '.[backends]')",
)

SIZE = 64
FAST = ("lite0", "b0", "v2b0")
SLOW = tuple(v for v in pretrained.TIMM_ARCHITECTURES if v not in FAST)
TOLERANCE = 1e-4


def _references(tmp_path_factory, variants):
    directory = tmp_path_factory.mktemp("timm")
    architectures = [pretrained.TIMM_ARCHITECTURES[v] for v in variants]
    return directory, timm_references(directory, architectures, SIZE)


@pytest.fixture(scope="module")
def fast_refs(tmp_path_factory):
    return _references(tmp_path_factory, FAST)


@pytest.fixture(scope="module")
def slow_refs(tmp_path_factory):
    return _references(tmp_path_factory, SLOW)


def _build(variant, path, include_top, **kwargs):
    if include_top:
        kwargs["classifier_activation"] = None
    else:
        kwargs["pooling"] = "avg"
    return keras_effnet.get_model(
        variant, weights=path, input_shape=(SIZE, SIZE, 3), include_top=include_top, **kwargs
    )


def _parity(variant, refs, include_top=True, float32=True):
    """float32 through the public path (pixels in, in-graph normalization), then float64.

    float64 on both sides, from the same float32 weights and normalized inputs,
    isolates the mapping from float32 rounding, which grows with depth (B6's
    55 blocks: 3.6e-4 between TensorFlow and PyTorch in float32).
    """
    directory, results = refs
    architecture = pretrained.TIMM_ARCHITECTURES[variant]
    reference = results[architecture]
    path = str(directory / f"{architecture}.safetensors")
    key = "logits" if include_top else "features"
    if float32:
        got = _build(variant, path, include_top).predict(reference["images"], verbose=0)
        assert got.shape == reference[key].shape
        diff32 = float(np.abs(got - reference[key]).max())
        print(f"{variant}: float32 max |diff| {diff32:.2e}")
        assert diff32 < TOLERANCE, f"{variant}: float32 max |diff| {diff32:.2e}"
    keras.config.set_dtype_policy("float64")
    try:
        model = _build(variant, path, include_top, include_preprocessing=False)
        got64 = model.predict(reference["inputs"].astype("float64"), verbose=0)
    finally:
        keras.config.set_dtype_policy("float32")
    diff64 = float(np.abs(got64 - reference[key + "64"]).max())
    print(f"{variant}: float64 max |diff| {diff64:.2e}")
    assert diff64 < 1e-9, f"{variant}: float64 max |diff| {diff64:.2e}"


@pytest.mark.parametrize("variant", FAST)
def test_logits_equal_timm(variant, fast_refs):
    _parity(variant, fast_refs)


@pytest.mark.slow
@pytest.mark.parametrize("variant", SLOW)
def test_logits_equal_timm_every_architecture(variant, slow_refs):
    # The mapping in float64 only: float32 rounding grows with depth (docs/models.md "Pretrained weights").
    _parity(variant, slow_refs, float32=False)


@pytest.mark.parametrize("variant", ("lite0", "v2b0"))
def test_pooled_features_equal_timm_without_top(variant, fast_refs):
    _parity(variant, fast_refs, include_top=False)


def test_round_trip_timm_ours_timm_is_exact(fast_refs, tmp_path):
    """timm's file -> our Lite0 -> our writer -> timm (strict=True): same tensors, same logits."""
    from safetensors.numpy import load_file

    directory, results = fast_refs
    original = str(directory / "tf_efficientnet_lite0.safetensors")
    ours = keras_effnet.EfficientNetLite0(weights=original, input_shape=(SIZE, SIZE, 3))
    path = checkpoints.save_timm_safetensors(ours, str(tmp_path / "lite0.safetensors"))
    before, after = load_file(original), load_file(path)
    assert sorted(before) == sorted(after)
    for name, value in before.items():
        if name.endswith("num_batches_tracked"):  # a training counter, not used at inference
            continue
        np.testing.assert_array_equal(after[name].astype(value.dtype), value, err_msg=name)
    again = timm_references(tmp_path, ["tf_efficientnet_lite0"], SIZE, load=path)
    np.testing.assert_array_equal(
        again["tf_efficientnet_lite0"]["logits"], results["tf_efficientnet_lite0"]["logits"]
    )
    with pytest.raises(ValueError, match="exists; pass overwrite=True"):
        checkpoints.save_timm_safetensors(ours, path)


def test_loading_does_not_import_torch(tmp_path):
    lite = keras_effnet.EfficientNetLite0(input_shape=(SIZE, SIZE, 3))
    path = checkpoints.save_timm_safetensors(
        lite, str(tmp_path / "lite0.safetensors"), normalization=pretrained.INCEPTION
    )
    code = (
        "import sys, numpy as np, keras_effnet\n"
        f"m = keras_effnet.EfficientNetLite0(weights={path!r}, input_shape=({SIZE}, {SIZE}, 3))\n"
        "assert np.allclose(np.ravel(m.get_layer('normalization').mean), 0.5)\n"
        "print('torch' in sys.modules)\n"
    )
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "False"


def _bare_file(model, path):
    """A timm-format file without metadata, as a state dict saved by hand would be."""
    from safetensors.numpy import save_file

    save_file(checkpoints.timm_state(model), str(path))
    return str(path)


def test_checkpoint_of_another_architecture_names_tensor_and_shapes(tmp_path):
    lite1 = keras_effnet.EfficientNetLite1(input_shape=(SIZE, SIZE, 3))
    tagged = checkpoints.save_timm_safetensors(lite1, str(tmp_path / "tagged.safetensors"))
    with pytest.raises(ValueError, match="holds tf_efficientnet_lite1 weights; this model is "):
        keras_effnet.EfficientNetLite0(weights=tagged, input_shape=(SIZE, SIZE, 3))
    path = _bare_file(lite1, tmp_path / "lite1.safetensors")
    with pytest.raises(ValueError) as err:
        keras_effnet.EfficientNetLite2(weights=path, input_shape=(SIZE, SIZE, 3))
    message = str(err.value)
    assert "lite1.safetensors" in message and "does not fit 'efficientnet_lite2'" in message
    assert "has shape" in message and "the model needs" in message
    # Lite1 is Lite0 with more blocks: the first tensor left over is named.
    with pytest.raises(ValueError, match=r"tensor 'blocks\.1\.2\.\w+\.\w+' has no place"):
        keras_effnet.EfficientNetLite0(weights=path, input_shape=(SIZE, SIZE, 3))
    # The other way round, the first tensor the model needs and the file lacks.
    lite0 = keras_effnet.EfficientNetLite0(input_shape=(SIZE, SIZE, 3))
    path0 = _bare_file(lite0, tmp_path / "lite0.safetensors")
    with pytest.raises(ValueError, match=r"has no tensor 'blocks\.1\.2\.conv_pw\.weight'"):
        keras_effnet.EfficientNetLite1(weights=path0, input_shape=(SIZE, SIZE, 3))


def test_truncated_file_is_refused_in_one_line(tmp_path):
    lite = keras_effnet.EfficientNetLite0(input_shape=(SIZE, SIZE, 3))
    path = checkpoints.save_timm_safetensors(lite, str(tmp_path / "lite0.safetensors"))
    data = open(path, "rb").read()
    with open(path, "wb") as f:
        f.write(data[: len(data) // 2])
    with pytest.raises(
        ValueError, match=r"Not a readable safetensors file \(truncated or corrupt\?\)"
    ):
        keras_effnet.EfficientNetLite0(weights=path, input_shape=(SIZE, SIZE, 3))


def test_classifier_of_another_size_is_refused_not_dropped(tmp_path):
    lite = keras_effnet.EfficientNetLite0(input_shape=(SIZE, SIZE, 3), classes=10)
    path = checkpoints.save_timm_safetensors(lite, str(tmp_path / "lite0.safetensors"))
    with pytest.raises(ValueError, match="`classes` must be 10 .the file's classifier."):
        keras_effnet.EfficientNetLite0(weights=path, input_shape=(SIZE, SIZE, 3), classes=5)
    # A new head is explicit: the backbone loads without the top.
    backbone = keras_effnet.EfficientNetLite0(
        weights=path, input_shape=(SIZE, SIZE, 3), include_top=False
    )
    np.testing.assert_array_equal(
        backbone.get_layer("top_conv").kernel.numpy(), lite.get_layer("top_conv").kernel.numpy()
    )


def test_symmetric_padding_architecture_is_refused(tmp_path):
    b0 = keras_effnet.EfficientNetB0(input_shape=(SIZE, SIZE, 3))
    path = checkpoints.save_timm_safetensors(
        b0, str(tmp_path / "b0.safetensors"), architecture="efficientnet_b0"
    )
    with pytest.raises(ValueError, match="'efficientnet_b0' weights were trained with symmetric"):
        keras_effnet.EfficientNetB0(weights=path, input_shape=(SIZE, SIZE, 3))
