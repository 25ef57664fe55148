"""Keeps TensorFlow's start-up INFO lines off the console (imported first by the scripts).

TensorFlow logs CUDA probing, CPU features and oneDNN notes from C++ while it
is imported, before TF_CPP_MIN_LOG_LEVEL is read, and logs "failed call to
cuInit" as an error on every machine without a GPU. Unless the user asks for
them (`--verbose=2`, or TF_CPP_MIN_LOG_LEVEL set in the environment), the
import runs with file descriptor 2 captured: INFO lines and the CPU-only CUDA
probe are dropped, anything else (a real warning or error) is replayed.
Later INFO logs are hidden by TF_CPP_MIN_LOG_LEVEL=1; warnings still show.
"""

import os
import re
import sys
import tempfile

_NOISE = re.compile(
    r"^(I\d{4} |WARNING: All log messages before absl::InitializeLog|To enable the following "
    r"instructions|E\d{4} .*(failed call to cuInit|Unable to register cu))"
)


def _verbose(argv):
    for i, arg in enumerate(argv):
        if arg.startswith("--verbose="):
            return arg.split("=", 1)[1]
        if arg == "--verbose" and i + 1 < len(argv):
            return argv[i + 1]
    return "1"


def quiet_tensorflow(argv=None):
    """Imports TensorFlow quietly unless --verbose=2 or TF_CPP_MIN_LOG_LEVEL is set."""
    argv = sys.argv if argv is None else argv
    if "TF_CPP_MIN_LOG_LEVEL" in os.environ or _verbose(argv) == "2":
        return
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "1"
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow as tf

            tf.config.list_physical_devices()  # The CUDA probe logs here.
            from absl import logging as absl_logging

            absl_logging.set_verbosity(absl_logging.WARNING)
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            for line in captured.read().decode("utf8", "replace").splitlines(keepends=True):
                if not _NOISE.match(line):
                    sys.stderr.write(line)
            sys.stderr.flush()


quiet_tensorflow()
