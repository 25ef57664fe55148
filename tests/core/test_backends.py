"""The model core on every Keras 3 backend: TensorFlow, JAX and PyTorch.

The layers and the builder use only `keras` (keras.ops, keras.layers), so B0
and Lite0 must build, run, train a step and save/load on each backend, and give
the TensorFlow backend's outputs for the same weights. Each backend runs in its
own process (KERAS_BACKEND is read once, at import). A backend that is not
installed is skipped: jax comes with the dev extra, torch with the `backends`
extra (see docs/models.md "Keras backends").
"""

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest

_SCRIPT = r"""
import json
import sys
import numpy as np
import keras
import keras_effnet

mode, work = sys.argv[1], sys.argv[2]
x = np.random.default_rng(0).uniform(0, 255, (2, 64, 64, 3)).astype("float32")
report = {}
for name in ("b0", "lite0"):
    keras.utils.set_random_seed(0)
    model = keras_effnet.get_model(name, weights=None, input_shape=(64, 64, 3), classes=10)
    if mode == "reference":
        # Non-trivial BatchNorm statistics, so inference-mode BN is compared too.
        rng = np.random.default_rng(1)
        for layer in model._flatten_layers():
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.moving_mean.assign(rng.normal(0, 0.1, layer.moving_mean.shape))
                layer.moving_variance.assign(rng.uniform(0.5, 1.5, layer.moving_variance.shape))
        model.save_weights(f"{work}/{name}.weights.h5")
        y = keras.ops.convert_to_numpy(model(x, training=False))
        np.save(f"{work}/{name}.reference.npy", y)
        continue
    backend = keras.backend.backend()
    model.load_weights(f"{work}/{name}.weights.h5")
    y = keras.ops.convert_to_numpy(model(x, training=False))
    np.save(f"{work}/{name}.{backend}.npy", y)
    model.save(f"{work}/{name}.{backend}.keras")
    back = keras.saving.load_model(f"{work}/{name}.{backend}.keras", safe_mode=True)
    np.save(f"{work}/{name}.{backend}.reloaded.npy",
            keras.ops.convert_to_numpy(back(x, training=False)))
    model.compile(keras.optimizers.SGD(0.01), "sparse_categorical_crossentropy")
    before = keras.ops.convert_to_numpy(model.get_layer("predictions").kernel).copy()
    loss = float(model.train_on_batch(x, np.array([1, 2])))
    after = keras.ops.convert_to_numpy(model.get_layer("predictions").kernel)
    report[name] = {"loss": loss, "updated": bool((before != after).any())}
print(json.dumps(report))
"""


def _run(backend, mode, work):
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    proc = subprocess.run(
        [sys.executable, "-c", _SCRIPT, mode, str(work)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1]) if mode == "check" else None


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    work = tmp_path_factory.mktemp("backends")
    _run("tensorflow", "reference", work)
    return work


# One process per backend (KERAS_BACKEND is read at import) checks both models:
# a process start and framework import cost more than building the two models.
@pytest.mark.timeout(900)
# JAX compiles both models for about a minute: slow. TensorFlow and PyTorch run by default.
@pytest.mark.parametrize(
    "backend", ["tensorflow", pytest.param("jax", marks=pytest.mark.slow), "torch"]
)
def test_model_core_runs_and_round_trips_on_backend(backend, reference):
    if backend != "tensorflow" and importlib.util.find_spec(backend) is None:
        pytest.skip(f"{backend} is not installed (pip install -e '.[backends]')")
    report = _run(backend, "check", reference)
    for name in ("b0", "lite0"):
        expected = np.load(reference / f"{name}.reference.npy")
        y = np.load(reference / f"{name}.{backend}.npy")
        assert y.shape == (2, 10)
        np.testing.assert_allclose(y, expected, atol=1e-4, err_msg=name)  # op order differs
        np.testing.assert_array_equal(np.load(reference / f"{name}.{backend}.reloaded.npy"), y)
        assert report[name]["updated"] and report[name]["loss"] > 0, (name, report)
