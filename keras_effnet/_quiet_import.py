"""Imported first by `keras_effnet/__init__.py`: Keras and TensorFlow start quietly.

scripts/_quiet.py does the same for the scripts before their flags are parsed.
"""

import os


def _import_backend_quietly():
    """Imports Keras (and so TensorFlow) without TensorFlow's native start-up lines.

    TensorFlow prints oneDNN, CPU-feature, CUDA-probe and "failed call to
    cuInit" lines from C++ at import, before TF_CPP_MIN_LOG_LEVEL is read
    (issue 21); `console.native_output_filtered` drops exactly those. A user
    who sets TF_CPP_MIN_LOG_LEVEL (or KERAS_EFFNET_NATIVE_LOGS=1) sees them.
    """
    if "TF_CPP_MIN_LOG_LEVEL" in os.environ:
        return
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "1"  # Later INFO lines off; warnings still show.
    from keras_effnet import console

    with console.native_output_filtered(fds=(2,)):
        import keras

        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            tf.config.list_physical_devices()  # The CUDA probe logs here.


_import_backend_quietly()
