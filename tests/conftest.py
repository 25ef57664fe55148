"""Test configuration: quiet TensorFlow, deterministic seeds, fixture models trained early."""

import os
import subprocess
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import pytest  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
# The trained models the export tests share (tests/export_testlib.py), by run.
_FIXTURE_MODELS = {"default": ("lite0",), "slow": ("lite0", "b0", "v2b0")}
_pretraining = []


def pytest_configure(config):
    """On a whole-suite run, trains the shared fixture models in the background at once.

    The first test that needs one would otherwise train it while the other
    pytest-xdist workers wait on its lock; started here, the training overlaps
    the tests that need no model. Cached models (export_testlib) cost nothing,
    and if this training fails the first test that needs the model trains it
    itself and reports the error.
    """
    if hasattr(config, "workerinput") or config.args not in ([], ["tests"], [HERE]):
        return
    if config.option.collectonly:
        return
    run = "slow" if config.option.markexpr.strip() == "slow" else "default"
    code = "import sys, export_testlib as lib\nfor name in sys.argv[1:]: lib.trained_model(name)"
    _pretraining.append(
        subprocess.Popen(
            [sys.executable, "-c", code, *_FIXTURE_MODELS[run]],
            cwd=HERE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    )


def pytest_unconfigure(config):
    del config
    for proc in _pretraining:
        proc.kill()
        proc.wait()


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(0)
    yield
