"""Keeps TensorFlow's start-up INFO lines off the console (imported first by the scripts).

TensorFlow logs CUDA probing, CPU features and oneDNN notes from C++ while it
is imported, before TF_CPP_MIN_LOG_LEVEL is read. Unless the user asks for them
(`--verbose=2`, or TF_CPP_MIN_LOG_LEVEL set in the environment), the import runs
inside `keras_effnet.console.native_output_filtered` (known noise dropped,
anything else replayed), and the library's later converter and LiteRT calls
filter the same way. Later INFO logs are hidden by TF_CPP_MIN_LOG_LEVEL=1;
warnings still show.
"""

import importlib.util
import os
import sys


def _verbose(argv):
    for i, arg in enumerate(argv):
        if arg.startswith("--verbose="):
            return arg.split("=", 1)[1]
        if arg == "--verbose" and i + 1 < len(argv):
            return argv[i + 1]
    return "1"


def _console():
    # By path: importing `keras_effnet.console` would run the package's
    # __init__, which imports Keras and so TensorFlow, before the filter is on.
    path = os.path.join(os.path.dirname(__file__), "..", "keras_effnet", "console.py")
    spec = importlib.util.spec_from_file_location("_keras_effnet_console", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def quiet_tensorflow(argv=None):
    """Imports TensorFlow quietly unless --verbose=2 or TF_CPP_MIN_LOG_LEVEL is set."""
    argv = sys.argv if argv is None else argv
    if "TF_CPP_MIN_LOG_LEVEL" in os.environ or _verbose(argv) == "2":
        os.environ["KERAS_EFFNET_NATIVE_LOGS"] = "1"
        return
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "1"
    with _console().native_output_filtered(fds=(2,)):
        import tensorflow as tf

        tf.config.list_physical_devices()  # The CUDA probe logs here.
        from absl import logging as absl_logging

        absl_logging.set_verbosity(absl_logging.WARNING)


quiet_tensorflow()
