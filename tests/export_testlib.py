"""Trained tiny models and data shared by the export tests (cached per process).

Export checks need a *trained* model: an untrained network outputs near-uniform
probabilities, so top-1 agreement between float and quantized models would be
decided by ties. Training is plain `model.fit` on digits at 32x32 in a
subprocess with deterministic ops, so the result depends only on its inputs:
the .keras is kept in `.pytest_cache/effnet-models/`, keyed by a hash of the
training script, the package's sources and the library versions, and later
test runs (the slow run after the default one, a rerun) reuse it instead of
training again. `KERAS_EFFNET_TEST_CACHE` names another cache folder.

Not `keras_effnet.bench.training.train_briefly` (the benchmarks' training,
`train` with the default recipe): measured for Lite0, 10 epochs at 32x32 on
2 shared cores, it takes 163 s against 79 s here (per-epoch validation,
checkpoints, BatchNorm re-estimation), for three models per test process; and
the figures the export tests assert were set on these deterministic models.
"""

import atexit
import fcntl
import functools
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile

import keras
import numpy as np

from keras_effnet import export
from keras_effnet.export import datasets

SIZE = 32
# v2b0: 5 epochs leave it at 0.82 test top-1, 8 reach 0.91.
_EPOCHS = {"lite0": 10, "b0": 5, "v2b0": 8}
_WORKDIR = tempfile.mkdtemp(prefix="effnet-export-tests-")
atexit.register(shutil.rmtree, _WORKDIR, ignore_errors=True)
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_CACHE = os.environ.get(
    "KERAS_EFFNET_TEST_CACHE", os.path.join(_ROOT, ".pytest_cache", "effnet-models")
)


@functools.lru_cache(maxsize=None)
def arrays(split, limit=None):
    """Digits (images float32 0..255, labels) at SIZE x SIZE."""
    return datasets.load_arrays(
        "digits", split, (SIZE, SIZE), limit=limit, shuffle=split == "train"
    )


# Runs in a subprocess: deterministic ops make the tiny model, and so the
# agreement figures the tests assert, the same on every run, and the global
# determinism switch must not leak into other tests of this pytest process.
_TRAIN = r"""
import sys
import keras
import tensorflow as tf
import keras_effnet
from keras_effnet import data

name, path, size, epochs = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
tf.config.experimental.enable_op_determinism()
keras.utils.set_random_seed(0)
model = keras_effnet.get_model(name, weights=None, input_shape=(size, size, 3), classes=10,
                               dropout_rate=0.0, drop_connect_rate=0.0)
# BatchNorm momentum 0.9 for the fit only: with the default 0.99 a short fit
# leaves the moving statistics near their initial values (test accuracy at
# chance).
for layer in model._flatten_layers(include_self=False, recursive=True):
    if isinstance(layer, keras.layers.BatchNormalization):
        layer.momentum = 0.9
model.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy")
model.fit(data.load_dataset("digits", "train", size, 32, shuffle=True, seed=0),
          epochs=epochs, verbose=0)
model.save(path)
"""


def _cache_key(*parts):
    """Hash of everything a deterministic training result depends on."""
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    digest = hashlib.sha256()
    for part in (*parts, tf.__version__, keras.__version__, np.__version__):
        digest.update(str(part).encode() + b"\0")
    package = os.path.join(_ROOT, "keras_effnet")
    for folder, dirs, files in sorted(os.walk(package)):
        dirs.sort()
        for file in sorted(f for f in files if f.endswith(".py")):
            path = os.path.join(folder, file)
            digest.update(os.path.relpath(path, package).encode() + b"\0")
            with open(path, "rb") as f:
                digest.update(f.read())
    return digest.hexdigest()[:16]


@functools.lru_cache(maxsize=None)
def trained_model(name):
    """A Lite0/B0/V2-B0 trained briefly on digits; returns the path of its .keras."""
    args = [name, str(SIZE), str(_EPOCHS[name])]
    path = os.path.join(_CACHE, f"{name}-{_cache_key(_TRAIN, *args)}.keras")
    os.makedirs(_CACHE, exist_ok=True)
    # One trainer per model when test processes run side by side; the others
    # wait on the lock and then find the file.
    with open(path + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not os.path.exists(path):
            partial = f"{path}.{os.getpid()}.keras"
            result = subprocess.run(
                [sys.executable, "-c", _TRAIN, name, partial, *args[1:]],
                capture_output=True,
                text=True,
                timeout=600,
            )
            if result.returncode != 0:
                raise RuntimeError(f"training {name} failed:\n{result.stderr[-3000:]}")
            os.replace(partial, path)
    return path


@functools.lru_cache(maxsize=None)
def loaded_model(name):
    return keras.saving.load_model(trained_model(name), compile=False)


@functools.lru_cache(maxsize=None)
def savedmodel(name):
    """SavedModel dir of the trained model (export once, convert many modes)."""
    return export.export_savedmodel(
        loaded_model(name), os.path.join(_WORKDIR, f"{name}_savedmodel")
    )


@functools.lru_cache(maxsize=None)
def converted(name, mode, io_type=None):
    """TFLite bytes of the trained model in `mode`."""
    calibration = arrays("train", 200)[0] if mode in ("int8", "int16x8") else None
    return export.convert(savedmodel(name), mode, calibration, io_type=io_type)


def workdir():
    return _WORKDIR


def confident(model, images, margin=0.8):
    """Indices of images the float model classifies with a clear margin."""
    probs = np.asarray(model.predict(images, verbose=0))
    top2 = np.sort(probs, axis=-1)[:, -2:]
    return np.flatnonzero(top2[:, 1] - top2[:, 0] > margin)


_SCRIPT = os.path.join(_ROOT, "scripts", "export_tflite.py")


def run_export_cli(output, *flags, model="lite0", timeout=840):
    """Runs scripts/export_tflite.py on a trained model; returns (stdout, report)."""
    result = subprocess.run(
        [
            sys.executable,
            _SCRIPT,
            f"--model={trained_model(model)}",
            f"--output={output}",
            "--dataset=digits",
            *flags,
        ],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=os.path.dirname(os.fspath(output)),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    with open(export.report_path(output)) as f:
        return result.stdout, json.load(f)


def collapse_int8(monkeypatch):
    """Makes every LiteRT run of the export answer class 0 for every image.

    What B0's post-training int8 once did in the scaling study: the accuracy
    guard must see it, whatever the real file scores.
    """
    from keras_effnet.export import verification  # pylint: disable=import-outside-toplevel

    real = verification.run_tflite

    def collapsed(tflite, images, **kwargs):
        out = real(tflite, images, **kwargs)
        out[:] = 0.0
        out[:, 0] = 1.0
        return out

    monkeypatch.setattr(verification, "run_tflite", collapsed)
