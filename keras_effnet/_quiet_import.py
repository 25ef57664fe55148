"""Keras and TensorFlow start quietly: the one place that imports them first.

Called by `keras_effnet.__getattr__` (the first public name a user touches)
and by every command's main (`keras_effnet.commands`) after its flags are
parsed, so `--help` never imports TensorFlow (issue 21).
"""

import os

_done = False
# Whether the user set TF_CPP_MIN_LOG_LEVEL: read before `import_backend_quietly` sets it.
_USER_LOG_LEVEL = "TF_CPP_MIN_LOG_LEVEL" in os.environ


def native_logs_requested():
    """The user asked for TensorFlow's own logs (TF_CPP_MIN_LOG_LEVEL or KERAS_EFFNET_NATIVE_LOGS)."""
    return _USER_LOG_LEVEL or os.environ.get("KERAS_EFFNET_NATIVE_LOGS") == "1"


def import_backend_quietly(native_logs=False):
    """Imports Keras (and so TensorFlow) without TensorFlow's native start-up lines.

    TensorFlow prints oneDNN, CPU-feature, CUDA-probe and "failed call to
    cuInit" lines from C++ at import, before TF_CPP_MIN_LOG_LEVEL is read
    (issue 21); `console.native_output_filtered` drops exactly those. A user
    who sets TF_CPP_MIN_LOG_LEVEL (or KERAS_EFFNET_NATIVE_LOGS=1) sees them.

    Args:
        native_logs: show the native lines (a command's `--verbose=2`): sets
            KERAS_EFFNET_NATIVE_LOGS=1 for the library's later converter and
            LiteRT calls too.
    """
    global _done
    if _done:
        return
    _done = True
    if native_logs:
        os.environ["KERAS_EFFNET_NATIVE_LOGS"] = "1"
    if native_logs or _USER_LOG_LEVEL:
        return
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "1"  # Later INFO lines off; warnings still show.
    from keras_effnet import console

    with console.native_output_filtered(fds=(2,)):
        import keras

        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            tf.config.list_physical_devices()  # The CUDA probe logs here.
